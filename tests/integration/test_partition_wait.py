"""Deferred partition waits for real: ChrononPartitionTrigger's run loop against a local warehouse
in a tmp folder (a partition landing after a few polls, the deadline, a failing catalog), its
serialization, the sensor deferring and resuming inside ``dag.test()``, and the bench's P3b figure
at a tiny scale."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time

import pytest

from chronon_airflow import warehouse
from chronon_airflow.catalogs import PartitionCatalog
from chronon_airflow.catalogs.local import LocalWarehouseCatalog
from chronon_airflow.triggers.partition import ChrononPartitionTrigger

HR = {"hr": "00:00"}


class FlakyCatalog(PartitionCatalog):
    """A custom catalog (found by its dotted path, as ``[chronon] catalog`` would name it): the local
    warehouse behind an outage of ``fail_next`` checks. Sync only: the base class's default
    ``amissing_partitions`` runs it in a thread."""

    fail_next = 0
    checks = 0

    def missing_partitions(self, table, partitions, partition_column="ds", subpartitions=None):
        cls = type(self)
        try:
            if cls.fail_next > 0:
                cls.fail_next -= 1
                raise ConnectionError("metastore unreachable")
            return LocalWarehouseCatalog().missing_partitions(table, partitions, partition_column, subpartitions)
        finally:
            # Counted once the check has looked: a test that lands a partition after n checks must
            # not have it land between the count and the listing (check n would then see it present).
            cls.checks += 1


FLAKY = f"{__name__}.FlakyCatalog"


@pytest.fixture
def wh(tmp_path, monkeypatch):
    root = tmp_path / "warehouse"
    root.mkdir()
    monkeypatch.setenv("AIRFLOW__CHRONON__WAREHOUSE", str(root))
    monkeypatch.setenv("AIRFLOW__CHRONON__CATALOG", "local")
    FlakyCatalog.fail_next = FlakyCatalog.checks = 0
    return root


def commit(root, table, ds, column="ds", subpartitions=None):
    staging = warehouse.staging_path(root, table, ds, column, subpartitions)
    (staging / "part-0.parquet").write_bytes(b"PAR1")
    warehouse.commit_partition(root, table, ds, staging, column, subpartitions)


async def first_event(trigger, timeout: float = 30.0):
    async def drain():
        async for event in trigger.run():
            return event.payload
    return await asyncio.wait_for(drain(), timeout)


def trigger(**kw) -> ChrononPartitionTrigger:
    args = dict(table="ns.mutations", partitions=["2024-01-01", "2024-01-02"], column="dt", subpartitions=HR,
                catalog="local", poll_interval=0.05, deadline=time.time() + 20, max_consecutive_errors=3)
    args.update(kw)
    return ChrononPartitionTrigger(**args)


def test_serialize_round_trip_keeps_subpartition_order():
    from airflow.sdk.module_loading import import_string

    t = trigger(subpartitions={"tz": "+01:00", "hr": "00:00", "table_name": "ns.view"}, deadline=123.5)
    path, kwargs = t.serialize()
    assert path == "chronon_airflow.triggers.partition.ChrononPartitionTrigger"
    assert kwargs == {"table": "ns.mutations", "partitions": ["2024-01-01", "2024-01-02"], "column": "dt",
                      "subpartitions": [["tz", "+01:00"], ["hr", "00:00"], ["table_name", "ns.view"]],
                      "catalog": "local", "poll_interval": 0.05, "deadline": 123.5, "max_consecutive_errors": 3}
    stored = json.loads(json.dumps(kwargs))  # the triggerer keeps it as JSON
    rebuilt = import_string(path)(**stored)
    assert rebuilt.serialize() == (path, kwargs)


def test_partitions_landing_after_a_few_polls_end_the_wait(wh, capfd):
    commit(wh, "ns.mutations", "2024-01-01", "dt", HR)

    async def scenario():
        waiting = asyncio.ensure_future(first_event(trigger()))
        await asyncio.sleep(0.2)  # about four polls with 2024-01-02 missing
        assert not waiting.done()
        commit(wh, "ns.mutations", "2024-01-02", "dt", {"hr": "01:00"})  # another hour: still missing
        await asyncio.sleep(0.15)
        assert not waiting.done()
        commit(wh, "ns.mutations", "2024-01-02", "dt", HR)
        return await waiting

    started = time.monotonic()
    event = asyncio.run(scenario())
    assert event["status"] == "success" and event["missing_count"] == 0, event
    assert event["table"] == "ns.mutations" and "all 2 partitions present" in event["message"]
    assert 0.35 <= time.monotonic() - started < 5
    polls = capfd.readouterr().out.count("ns.mutations/dt=*/hr=00:00: 1 of 2 partitions missing: 2024-01-02")
    assert polls >= 4, polls


def test_deadline_gives_a_timeout_event_naming_the_missing(wh):
    started = time.monotonic()
    event = asyncio.run(first_event(trigger(table="bare", column="ds", subpartitions=None, poll_interval=0.1,
                                            deadline=time.time() + 0.3)))
    assert event["status"] == "timeout", event
    assert event["missing"] == ["2024-01-01", "2024-01-02"] and event["missing_count"] == 2
    assert "bare/ds=*: still 2 of 2 partitions missing: 2024-01-01, 2024-01-02" in event["message"]
    assert 0.25 <= time.monotonic() - started < 10  # the status says the deadline ended it; this, roughly when


def test_the_first_check_comes_one_interval_after_the_start(wh):
    """The sensor checked just before deferring; a trigger that fired at once would race Airflow's
    handling of the deferring worker's exit (chronon_airflow/triggers/pacing.py)."""
    commit(wh, "ns.mutations", "2024-01-01", "dt", HR)
    commit(wh, "ns.mutations", "2024-01-02", "dt", HR)
    started = time.monotonic()
    event = asyncio.run(first_event(trigger(poll_interval=1.0)))
    assert event["status"] == "success", event
    assert time.monotonic() - started >= 1.0

    # A triggerer that restarts after the deadline still checks once, at once: present is success,
    # missing is the timeout.
    event = asyncio.run(first_event(trigger(poll_interval=3600.0, deadline=time.time() - 5)))
    assert event["status"] == "success", event
    event = asyncio.run(first_event(trigger(table="bare", column="ds", subpartitions=None, poll_interval=3600.0,
                                            deadline=time.time() - 5)))
    assert event["status"] == "timeout" and event["missing_count"] == 2, event


def test_catalog_errors_are_retried_up_to_a_bound(wh):
    commit(wh, "ns.mutations", "2024-01-01", "dt", HR)
    commit(wh, "ns.mutations", "2024-01-02", "dt", HR)
    FlakyCatalog.fail_next = 2
    event = asyncio.run(first_event(trigger(catalog=FLAKY)))
    assert event["status"] == "success" and FlakyCatalog.checks == 3, (event, FlakyCatalog.checks)

    FlakyCatalog.fail_next, FlakyCatalog.checks = 10, 0
    event = asyncio.run(first_event(trigger(catalog=FLAKY)))
    assert event["status"] == "error" and FlakyCatalog.checks == 3
    assert "after 3 consecutive catalog errors; last: ConnectionError: metastore unreachable" in event["message"]


def test_a_wait_that_cannot_succeed_fails_at_once(wh):
    event = asyncio.run(first_event(trigger(catalog="no_such_module.Catalog")))
    assert event["status"] == "failed" and "no_such_module" in event["message"]
    event = asyncio.run(first_event(trigger(table="ns.../etc")))
    assert event["status"] == "failed" and "ns.../etc" in event["message"]


def test_sensor_defers_anyway_when_its_first_check_fails(wh):
    from airflow.sdk.exceptions import TaskDeferred

    from chronon_airflow.sensors.partition import ChrononPartitionSensor

    FlakyCatalog.fail_next = 1
    s = ChrononPartitionSensor(task_id="wait", table="ns.t", start_ds="2024-01-01", end_ds="2024-01-03",
                               catalog=FLAKY, poke_interval=5, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["partitions"] == ["2024-01-01", "2024-01-02", "2024-01-03"] and kwargs["catalog"] == FLAKY


DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from chronon_airflow.sensors.partition import ChrononPartitionSensor

with DAG("partition_wait_test", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False) as dag:
    ChrononPartitionSensor(task_id="wait", table="ns.mutations", start_ds="{{ ds }}", end_ds="{{ ds }}",
                           lag_days=1, partition_column="dt", subpartitions={"hr": "00:00"},
                           catalog="tests.integration.test_partition_wait.FlakyCatalog",
                           poke_interval=0.2, timeout=60)
"""


def test_dag_test_defers_then_succeeds_when_the_partition_lands(wh, airflow_db, capfd, caplog):
    import importlib.util
    import os
    from pathlib import Path

    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if Path(os.environ["AIRFLOW_HOME"]) not in dags.resolve().parents:
        pytest.skip(f"DAGs folder {dags} is not inside the test AIRFLOW_HOME; not writing a test DAG there")
    dags.mkdir(parents=True, exist_ok=True)
    dag_file = dags / "partition_wait_test.py"
    dag_file.write_text(DAG_FILE)
    spec = importlib.util.spec_from_file_location("partition_wait_test", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    # The run is for 2024-03-02 with a lag of 1: it waits for dt=2024-03-01/hr=00:00, written only
    # after the worker's check and two of the trigger's (the DAG's catalog counts them).
    def land():
        bound = time.monotonic() + 60
        while time.monotonic() < bound and FlakyCatalog.checks < 3:
            time.sleep(0.05)
        commit(wh, "ns.mutations", "2024-03-01", "dt", HR)

    writer = threading.Thread(target=land)
    writer.start()
    try:
        run = module.dag.test(logical_date=dt.datetime(2024, 3, 2, tzinfo=dt.timezone.utc))
    finally:
        writer.join()
        dag_file.unlink()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"wait": "success"}, states
    assert FlakyCatalog.checks >= 3
    logged = capfd.readouterr()
    logged = logged.out + logged.err + caplog.text  # the task's own log lines / dag.test()'s
    assert "[DAG TEST] running trigger in line" in logged  # the sensor deferred
    assert logged.count("ns.mutations/dt=*/hr=00:00: 1 of 1 partitions missing: 2024-03-01") >= 3
    assert "ns.mutations/dt=*/hr=00:00: all 1 partitions present" in logged


def test_bench_p3b_at_a_tiny_scale(tmp_path):
    from chronon_bench.harness import Scale, p3b, table

    res = p3b(tmp_path, Scale(triggers=12, p3_polls=2, p3_interval=0.2), log=lambda *_: None)
    m = res.measured
    assert m["triggers"] == 12 and m["worker_slots_held"] == 0 and m["polls"] >= 12
    assert res.baseline["worker_slots_held"] == 12 and res.ratio > 0
    line = table({"results": [res.__dict__], "machine": {"cpu": "x", "cores": 1, "mem_gib": 1, "python": "3",
                                                         "airflow": "3"}})
    assert "P3b 12 partition waits" in line and "0 slots held" in line
