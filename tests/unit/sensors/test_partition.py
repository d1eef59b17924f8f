"""ChrononPartitionSensor, the partition catalogs and the warehouse layout, against real files.

Which partitions a run waits for (lag, negative lag, the dependency's start/end window), the local
catalog with a ``dt`` column and ``hr=00:00`` sub-partitions, the hive catalog's exact partition
names (through a stand-in metastore hook: no metastore runs here), and the sensor's execute():
already there -> done in the worker; missing -> deferred to ChrononPartitionTrigger.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from chronon_airflow import warehouse
from chronon_airflow.catalogs import PartitionCatalog, get_catalog, missing_partitions
from chronon_airflow.catalogs.hive import HiveMetastoreCatalog
from chronon_airflow.catalogs.local import LocalWarehouseCatalog
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.sensors.partition import ChrononPartitionSensor, wanted_partitions
from chronon_airflow.triggers.partition import ChrononPartitionTrigger

HR = {"hr": "00:00"}


def commit(root, table, ds, column="ds", subpartitions=None):
    staging = warehouse.staging_path(root, table, ds, column, subpartitions)
    (staging / "part-0.parquet").write_bytes(b"PAR1")
    return warehouse.commit_partition(root, table, ds, staging, column, subpartitions)


@pytest.fixture
def wh(tmp_path, monkeypatch):
    """A real warehouse folder, and [chronon] warehouse / catalog pointing at it."""
    root = tmp_path / "warehouse"
    root.mkdir()
    monkeypatch.setenv("AIRFLOW__CHRONON__WAREHOUSE", str(root))
    monkeypatch.setenv("AIRFLOW__CHRONON__CATALOG", "local")
    return root


def sensor(**kw) -> ChrononPartitionSensor:
    args = dict(task_id="wait", table="ns.events", start_ds="2024-05-01", end_ds="2024-05-01",
                poke_interval=7, timeout=600)
    args.update(kw)
    return ChrononPartitionSensor(**args)


# -- which partitions ------------------------------------------------------------------------------


def test_lag_shifts_every_ds_of_the_range():
    assert wanted_partitions("2024-03-01", "2024-03-03", 2) == (["2024-02-28", "2024-02-29", "2024-03-01"], "")
    assert wanted_partitions("2024-03-01", "2024-03-01") == (["2024-03-01"], "")


def test_negative_lag_waits_for_a_later_partition():
    assert wanted_partitions("2024-12-31", "2025-01-01", -1)[0] == ["2025-01-01", "2025-01-02"]


def test_window_drops_partitions_outside_start_and_end_inclusive():
    wanted, note = wanted_partitions("2024-01-01", "2024-01-06", 0, "2024-01-02", "2024-01-04")
    assert wanted == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert note == ("2024-01-05..2024-01-06 are past the dependency's end 2024-01-04; "
                    "2024-01-01 is before the dependency's start 2024-01-02")
    # The window applies to the partition waited for, i.e. after the lag.
    assert wanted_partitions("2024-01-03", "2024-01-03", 2, window_start="2024-01-02")[0] == []
    assert wanted_partitions("2024-01-03", "2024-01-03", 1, window_start="2024-01-02")[0] == ["2024-01-02"]


def test_nothing_to_wait_for_succeeds_at_once_saying_why(wh, capfd):
    s = sensor(start_ds="2024-05-01", end_ds="2024-05-01", window_end="2023-01-01", catalog="no.such.Catalog")
    assert s.partitions() == []
    assert s.execute({}) is None  # no catalog asked (this one would not even load), no deferral
    assert "2024-05-01 is past the dependency's end 2023-01-01: nothing to wait for" in capfd.readouterr().out
    before = sensor(start_ds="2024-01-01", end_ds="2024-01-02", window_start="2024-02-01", deferrable=False)
    assert before.execute({}) is None


def test_bad_config_values_fail_when_the_dag_is_built():
    for bad in (dict(table="../etc.passwd"), dict(table="a.b.c"), dict(partition_column="ds;drop"),
                dict(subpartitions={"hr": "00/../.."}), dict(subpartitions={"h r": "1"}),
                dict(subpartitions={"ds": "1"}), dict(window_start="2024-02-30"),
                dict(window_start="2024-02-02", window_end="2024-02-01"), dict(lag_days="2")):
        with pytest.raises(ValueError):
            sensor(**bad)


# -- the warehouse layout and the local catalog ----------------------------------------------------


def test_layout_keeps_ds_and_adds_column_subpartitions_and_default_namespace(tmp_path):
    assert warehouse.partition_path(tmp_path, "ns.t", "2024-01-01") == tmp_path / "ns" / "t" / "ds=2024-01-01"
    assert warehouse.partition_path(tmp_path, "t", "2024-01-01", "dt", {"hr": "00:00", "table_name": "ns.view"}) \
        == tmp_path / "default" / "t" / "dt=2024-01-01" / "hr=00:00" / "table_name=ns.view"
    assert warehouse.partition_spec("2024-01-01", "dt", [("hr", "00:00"), ("tz", "+01:00")]) == \
        "dt=2024-01-01/hr=00:00/tz=+01:00"
    for bad in (("..", "2024-01-01"), ("ns.t", "2024-01-01/.."), ("ns.t", "2024-01-01\n")):
        with pytest.raises(ValueError):
            warehouse.partition_path(tmp_path, *bad)
    with pytest.raises(ValueError):
        warehouse.partition_path(tmp_path, "ns.t", "2024-01-01", "ds", {"hr": "../../x"})


def test_writers_of_one_partition_at_once_all_commit_and_the_last_one_wins(tmp_path):
    import threading

    writers, rounds = 6, 15
    for r in range(rounds):
        stagings = []
        for w in range(writers):
            staging = warehouse.staging_path(tmp_path, "ns.t", "2024-01-01")
            (staging / f"part-{w}.parquet").write_bytes(b"PAR1")
            stagings.append(staging)
        start, errors = threading.Barrier(writers), []

        def commit_one(staging, start=start, errors=errors):
            start.wait()
            try:
                warehouse.commit_partition(tmp_path, "ns.t", "2024-01-01", staging)
            except OSError as e:  # what a lost race raised before
                errors.append(e)

        threads = [threading.Thread(target=commit_one, args=(s,)) for s in stagings]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], f"round {r}: {errors}"
        files = sorted(p.name for p in warehouse.partition_path(tmp_path, "ns.t", "2024-01-01").iterdir())
        assert len(files) == 2 and files[0] == warehouse.SUCCESS_MARKER and files[1].startswith("part-"), files
        assert sorted(p.name for p in warehouse.table_path(tmp_path, "ns.t").iterdir()) == ["ds=2024-01-01"]


def test_local_catalog_dt_column_and_hr_subpartition(wh):
    commit(wh, "ns.mutations", "2024-01-01", "dt", HR)
    commit(wh, "ns.mutations", "2024-01-02", "dt", {"hr": "01:00"})  # another hour: not ours
    commit(wh, "ns.mutations", "2024-01-03", "ds", HR)  # another column: not ours
    staging = warehouse.staging_path(wh, "ns.mutations", "2024-01-04", "dt", HR)  # not committed yet
    (staging / "part-0.parquet").write_bytes(b"PAR1")
    days = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    cat = LocalWarehouseCatalog(wh)
    assert cat.missing_partitions("ns.mutations", days, "dt", HR) == days[1:]
    assert asyncio.run(cat.amissing_partitions("ns.mutations", days, "dt", HR)) == days[1:]
    assert cat.missing_partitions("ns.mutations", days, "dt", {"hr": "01:00"}) == \
        ["2024-01-01", "2024-01-03", "2024-01-04"]
    assert warehouse.list_partitions(wh, "ns.mutations", "dt", HR) == ["2024-01-01"]
    warehouse.commit_partition(wh, "ns.mutations", "2024-01-04", staging, "dt", HR)
    assert asyncio.run(cat.amissing_partitions("ns.mutations", days, "dt", HR)) == days[1:3]
    # Today's ds layout still works, and a bare table is in namespace default.
    commit(wh, "plain", "2024-01-02")
    assert (wh / "default" / "plain" / "ds=2024-01-02" / "_SUCCESS").exists()
    assert get_catalog().missing_partitions("plain", days) == ["2024-01-01", "2024-01-03", "2024-01-04"]
    assert warehouse.list_partitions(wh, "plain") == ["2024-01-02"]
    assert warehouse.has_partition(wh, "plain", "2024-01-02")


def test_local_catalog_never_builds_a_path_from_a_bad_name(wh):
    cat = LocalWarehouseCatalog(wh)
    for args in (("ns.../x", ["2024-01-01"]), ("ns.t", ["../../etc"]), ("ns.t", ["2024-01-01"], "ds", {"hr": "a/b"})):
        with pytest.raises(ValueError):
            cat.missing_partitions(*args)
        with pytest.raises(ValueError):
            asyncio.run(cat.amissing_partitions(*args))


# -- custom and hive catalogs ----------------------------------------------------------------------


class OldStyleCatalog(PartitionCatalog):
    """A custom catalog written against the old signature (no subpartitions), sync only."""

    def missing_partitions(self, table, partitions, partition_column="ds"):
        return [p for p in partitions if p.endswith("2")]


def test_custom_catalog_works_unchanged_and_async_by_default():
    cat = OldStyleCatalog()
    days = ["2024-01-01", "2024-01-02"]
    assert asyncio.run(cat.amissing_partitions("ns.t", days)) == ["2024-01-02"]
    assert missing_partitions(cat, "ns.t", days, "ds") == ["2024-01-02"]
    with pytest.raises(TypeError, match="does not take subpartitions"):
        asyncio.run(cat.amissing_partitions("ns.t", days, "ds", HR))


class StandInMetastoreHook:
    """Plays HiveMetastoreHook.check_for_named_partition(schema, table, partition_name)."""

    def __init__(self, existing: set[tuple[str, str, str]]):
        self.existing = existing
        self.asked: list[tuple[str, str, str]] = []

    def check_for_named_partition(self, schema: str, table: str, partition_name: str) -> bool:
        self.asked.append((schema, table, partition_name))
        return (schema, table, partition_name) in self.existing


def test_hive_catalog_asks_exact_named_partitions():
    hook = StandInMetastoreHook({("ns", "mutations", "dt=2024-01-01/hr=00:00"), ("default", "bare", "ds=2024-01-02")})
    cat = HiveMetastoreCatalog(hook=hook)
    days = ["2024-01-01", "2024-01-02"]
    assert cat.missing_partitions("ns.mutations", days, "dt", HR) == ["2024-01-02"]
    assert hook.asked == [("ns", "mutations", "dt=2024-01-01/hr=00:00"), ("ns", "mutations", "dt=2024-01-02/hr=00:00")]
    hook.asked.clear()
    assert asyncio.run(cat.amissing_partitions("bare", days)) == ["2024-01-01"]
    assert hook.asked == [("default", "bare", "ds=2024-01-01"), ("default", "bare", "ds=2024-01-02")]
    hook.asked.clear()
    with pytest.raises(ValueError):
        cat.missing_partitions("ns.t", days, "ds", {"hr": "00'; drop"})
    assert hook.asked == []  # nothing reaches the metastore before every name is checked


def test_hive_catalog_without_the_provider_says_how_to_install_it():
    try:
        import airflow.providers.apache.hive  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidConfig, match=r"chronon-airflow\[hive\]"):
            get_catalog("hive")
    else:
        pytest.skip("the apache-hive provider is installed here")


# -- the sensor ------------------------------------------------------------------------------------


def test_all_present_returns_in_the_worker_without_deferring(wh):
    for ds in ("2024-04-29", "2024-04-30"):
        commit(wh, "ns.events", ds, "dt", HR)
    s = sensor(start_ds="2024-05-01", end_ds="2024-05-02", lag_days=2, partition_column="dt", subpartitions=HR)
    assert s.execute({}) is None
    assert s.mode == "poke" and s.deferrable


def test_missing_defers_to_the_trigger_with_the_right_kwargs(wh, capfd):
    from airflow.sdk.exceptions import TaskDeferred

    commit(wh, "ns.events", "2024-04-30", "dt", HR)
    s = sensor(start_ds="2024-05-01", end_ds="2024-05-04", lag_days=1, partition_column="dt", subpartitions=HR,
               window_end="2024-05-02", poke_interval=42, timeout=3600, max_consecutive_errors=4)
    t0 = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    d = deferred.value
    assert isinstance(d.trigger, ChrononPartitionTrigger) and d.method_name == "execute_complete"
    path, kwargs = d.trigger.serialize()
    assert path == "chronon_airflow.triggers.partition.ChrononPartitionTrigger"
    deadline = kwargs.pop("deadline")
    assert t0 + 3600 <= deadline <= time.time() + 3600
    assert kwargs == {"table": "ns.events", "partitions": ["2024-05-01", "2024-05-02"], "column": "dt",
                      "subpartitions": [["hr", "00:00"]], "catalog": "local", "poll_interval": 42.0,
                      "max_consecutive_errors": 4}
    assert d.timeout.total_seconds() == 3600 + 60  # slack over the trigger's own deadline
    logged = capfd.readouterr().out
    assert "ns.events/dt=*/hr=00:00: 2 of 3 partitions missing: 2024-05-01, 2024-05-02" in logged
    assert "2024-05-03 is past the dependency's end 2024-05-02: not waited for" in logged


def test_defaults_are_deferrable_not_reschedule():
    s = sensor()
    assert (s.deferrable, s.mode, s.partition_column, s.lag_days, s.subpartitions) == (True, "poke", "ds", 0, {})
    assert tuple(s.template_fields) == ("start_ds", "end_ds")


def test_execute_complete_maps_every_event():
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

    s = sensor()
    assert s.execute_complete({}, {"status": "success", "message": "ok"}) is None
    with pytest.raises(AirflowSensorTimeout, match="still 1 of 1"):
        s.execute_complete({}, {"status": "timeout", "message": "still 1 of 1 partitions missing"})
    with pytest.raises(AirflowFailException, match="no such catalog"):
        s.execute_complete({}, {"status": "failed", "message": "no such catalog"})
    with pytest.raises(AirflowException, match="gave up") as err:
        s.execute_complete({}, {"status": "error", "message": "gave up after 5"})
    assert not isinstance(err.value, (AirflowFailException, AirflowSensorTimeout))  # retries apply
    with pytest.raises(AirflowException, match="no event"):
        s.execute_complete({}, None)


def test_poke_mode_checks_in_the_worker(wh):
    from airflow.sdk.exceptions import AirflowFailException

    s = sensor(table="bare", deferrable=False, poke_interval=0, timeout=5)
    assert s.poke({}) is False
    commit(wh, "bare", "2024-05-01")
    assert s.poke({}) is True and s.execute({}) is None
    with pytest.raises(AirflowFailException, match="not.a.Catalog"):
        sensor(catalog="not.a.Catalog", deferrable=False).poke({})
    with pytest.raises(AirflowFailException, match="after"):
        sensor(start_ds="2024-05-02", end_ds="2024-05-01").execute({})
