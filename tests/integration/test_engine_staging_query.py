"""The local engine's ``staging-query-backfill`` and the chained shapes around it, on real Spark.

Configs are in ``tests/data/engine/production`` (compiled by chronon-ai 0.0.115 from
``tests/data/engine/src``, see the README there). One spark-submit run proves the driver's command
line end to end; everything else runs the driver in this process, in one SparkSession.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from chronon_airflow import naming, warehouse
from tests.support.paths import CONFIGS, TEST_DATA

pytestmark = pytest.mark.spark

PROD = TEST_DATA / "engine" / "production"
ENRICHED_SQ = PROD / "staging_queries" / "search" / "click_events_enriched.v1"
PROBE_SQ = PROD / "staging_queries" / "search" / "template_probe.v1"
ENRICHED_JOIN = PROD / "joins" / "search" / "enriched_clicks.v1"
PLAIN_JOIN = PROD / "joins" / "search" / "search_clicks.v1"
CHAINED_GB = PROD / "group_bys" / "search" / "user_click_affinity.v1"
DAY = 86_400_000
SAMPLE = ("2024-03-08", "2024-03-18")


@pytest.fixture(scope="session")
def spark():
    import logging

    from chronon_local_engine.session import local_session

    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = local_session("chronon-engine-tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    from chronon_local_engine import sample_data

    root = tmp_path_factory.mktemp("sq_warehouse")
    sample_data.generate(root, *SAMPLE, seed=5)
    return root


def drive(spark, wh: Path, *argv: str) -> dict:
    from chronon_local_engine import driver

    args = driver.build_parser().parse_args([*argv, "--warehouse", str(wh)])
    return driver.run(args, spark=spark)


def read(wh: Path, table: str, ds: str) -> pd.DataFrame:
    return pd.read_parquet(warehouse.partition_path(wh, table, ds))


def source(wh: Path, table: str, ds: str) -> pd.DataFrame:
    return read(wh, table, ds).assign(ds=ds)


@pytest.fixture(scope="module")
def enriched(wh, tmp_path_factory):
    """``spark-submit driver.py staging-query-backfill`` exactly as upstream run.py words it."""
    from chronon_airflow.spark.job import LOCAL_CONF, local_driver_path

    cwd = tmp_path_factory.mktemp("task_cwd")
    conf = {**LOCAL_CONF, "spark.chronon.partition.column": "ds", "spark.chronon.partition.format": "yyyy-MM-dd"}
    argv = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]"]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    argv += [local_driver_path(), "staging-query-backfill", f"--conf-path={ENRICHED_SQ}", "--end-date=2024-03-17",
             "--start-partition-override=2024-03-15", "--warehouse", str(wh)]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc, cwd


def test_staging_query_writes_exactly_its_range(spark, wh, enriched):
    proc, cwd = enriched
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = "search_features.search_click_events_enriched_v1"
    assert f"wrote {table} partitions 2024-03-15..2024-03-17 (3)" in proc.stdout
    assert "WHERE c.ds BETWEEN '2024-03-15' AND '2024-03-17'" in proc.stdout  # the rendered query is logged
    # The sources hold 03-08..03-18; the output holds exactly the 3 days asked for, each committed.
    assert warehouse.list_partitions(wh, table) == ["2024-03-15", "2024-03-16", "2024-03-17"]
    assert not [p for p in warehouse.table_path(wh, table).iterdir() if p.name.startswith(".")]
    assert sorted(os.listdir(cwd)) == []  # no spark-warehouse/ or metastore_db/ left in the task's cwd
    for ds in ("2024-03-15", "2024-03-16", "2024-03-17"):
        got = read(wh, table, ds)
        assert list(got.columns) == ["item_id", "click_id", "dwell_time_ms", "category", "price_cents", "ts"]
        clicks = read(wh, "search_data.item_clicks", ds)
        expected = clicks.merge(read(wh, "search_data.items_snapshot", ds), on="item_id")
        assert len(got) == len(clicks) == len(expected)
        key = ["click_id", "item_id", "dwell_time_ms", "category", "price_cents", "ts"]
        pd.testing.assert_frame_equal(got[key].sort_values("click_id").reset_index(drop=True),
                                      expected[key].sort_values("click_id").reset_index(drop=True))
    # Upstream fills only unfilled partitions: running the same range again computes nothing.
    again = drive(spark, wh, "staging-query-backfill", "--conf-path", str(ENRICHED_SQ), "--end-date", "2024-03-17",
                  "--start-partition-override", "2024-03-15")
    assert again == {"table": table, "partitions": []}


def test_templates_and_unfilled_ranges(spark, wh):
    table = "search_features.search_template_probe_v1"
    probe = ["staging-query-backfill", "--conf-path", str(PROBE_SQ)]

    def echoed() -> dict:
        out = {}
        for ds in warehouse.list_partitions(wh, table):
            df = read(wh, table, ds)
            assert len(df) == 40  # one row per catalog item
            rows = df[["range_start", "range_end", "latest", "snapshot_max"]].drop_duplicates()
            assert len(rows) == 1
            out[ds] = tuple(rows.iloc[0])
        return out

    # No override: the range starts at startPartition (2024-03-15).
    assert drive(spark, wh, *probe, "--end-date", "2024-03-16")["partitions"] == ["2024-03-15", "2024-03-16"]
    # latest_date = --end-date; max_date(table=...) = the table's latest partition (03-18), not end.
    assert echoed() == {"2024-03-15": ("2024-03-15", "2024-03-16", "2024-03-16", "2024-03-18"),
                        "2024-03-16": ("2024-03-15", "2024-03-16", "2024-03-16", "2024-03-18")}
    # From 03-13: 03-13/03-14 lie before the earliest output partition (upstream's "first hole",
    # skipped), 03-15/03-16 are filled: only 03-17 runs, with start_date = end_date = 03-17.
    assert drive(spark, wh, *probe, "--end-date", "2024-03-17",
                 "--start-partition-override", "2024-03-13")["partitions"] == ["2024-03-17"]
    assert echoed()["2024-03-17"] == ("2024-03-17", "2024-03-17", "2024-03-17", "2024-03-18")
    # --run-first-hole fills them, one query per --step-days 1 step.
    assert drive(spark, wh, *probe, "--end-date", "2024-03-17", "--start-partition-override", "2024-03-13",
                 "--run-first-hole", "--step-days", "1")["partitions"] == ["2024-03-13", "2024-03-14"]
    got = echoed()
    assert got["2024-03-13"] == ("2024-03-13", "2024-03-13", "2024-03-17", "2024-03-18")
    assert got["2024-03-14"] == ("2024-03-14", "2024-03-14", "2024-03-17", "2024-03-18")
    assert sorted(got) == ["2024-03-13", "2024-03-14", "2024-03-15", "2024-03-16", "2024-03-17"]


def test_macro_substitution_matches_upstream():
    """Upstream ParametricMacroTest, plus StagingQuery.substitute's checks."""
    from chronon_local_engine.staging_query import MacroError, replace_macro, substitute

    def fn(args):
        return "st:" + "/".join(args) + "|" + "/".join(args.values())

    text = "something nothing-{{ something( a_1=b, 3.1, c=d) }}-something after-{{ thing:a1=b1 }}{{ something }}"
    assert replace_macro(text, "something", fn) == (
        "something nothing-st:a_1/c|b, 3.1/d-something after-{{ thing:a1=b1 }}st:|")
    invalid = "something nothing-{{ something(a_1=b,3+1,c=d) }}-something after-{{ thing:a1=b1 }}{{ something }}"
    assert replace_macro(invalid, "something", fn) == (
        "something nothing-{{ something(a_1=b,3+1,c=d) }}-something after-{{ thing:a1=b1 }}st:|")

    latest = {"ns.t": "2024-02-01"}.get
    q = "{{start_date}}|{{ end_date }}|{{  latest_date }}|{{ max_date(table=ns.t) }}"
    assert substitute(q, "2024-01-01", "2024-01-03", "2024-01-05", latest) == (
        "2024-01-01|2024-01-03|2024-01-05|2024-02-01")
    assert substitute("ds = '{{ start_date }}'", None, None, "2024-01-05", latest) == "ds = 'null'"
    with pytest.raises(MacroError, match=r"Unresolved template macro\(s\) after substitution: \{\{ ds }}"):
        substitute("ds = '{{ ds }}'", "a", "b", "c", latest)
    with pytest.raises(MacroError, match="No partitions exist for table ns.missing to calculate max_date"):
        substitute("{{ max_date(table=ns.missing) }}", "a", "b", "c", latest)
    with pytest.raises(MacroError, match="No table in args"):
        substitute("{{ max_date(tbl=ns.t) }}", "a", "b", "c", latest)


def test_setups_and_missing_ds(spark, wh, tmp_path, capsys):
    from chronon_local_engine import driver

    base = json.loads(PROBE_SQ.read_text())

    def conf(name: str, **fields) -> str:
        path = tmp_path / name
        path.write_text(json.dumps({**base, "metaData": {**base["metaData"], "name": f"search.{name}"}, **fields}))
        return str(path)

    # A setup that needs a jar: refused before anything runs, exit code 3 as for every unsupported feature.
    udf = "CREATE TEMPORARY FUNCTION S2_CELL AS 'com.sample.hive.udf.S2CellId'"
    bad = conf("udf_probe.v1", setups=["SET spark.sql.ansi.enabled=true", udf])
    rc = driver.main(["staging-query-backfill", "--conf-path", bad, "--end-date", "2024-03-16",
                      "--warehouse", str(wh)])
    assert rc == driver.EXIT_NOT_SUPPORTED == 3
    err = capsys.readouterr().err
    assert f"staging query setup {udf!r} (it needs a jar) is not supported by the local engine" in err
    assert f"run it with the Chronon jar (conf: {bad})" in err
    assert not warehouse.table_path(wh, "search_features.search_udf_probe_v1").exists()

    # Setups the local engine can run (a SQL function) do run.
    sql_udf = "CREATE TEMPORARY FUNCTION cents_to_units(x BIGINT) RETURNS DOUBLE RETURN x / 100.0"
    fn = conf("sql_fn.v1", setups=[sql_udf],
              query="SELECT item_id, cents_to_units(price_cents) AS price, ds FROM search_data.items_snapshot "
                    "WHERE ds BETWEEN '{{ start_date }}' AND '{{ end_date }}'")
    out = drive(spark, wh, "staging-query-backfill", "--conf-path", fn, "--end-date", "2024-03-15")
    assert out == {"table": "search_features.search_sql_fn_v1", "partitions": ["2024-03-15"]}
    snap = read(wh, "search_data.items_snapshot", "2024-03-15")
    got = read(wh, out["table"], "2024-03-15")
    assert dict(zip(got.item_id, got.price, strict=True)) == pytest.approx(
        dict(zip(snap.item_id, snap.price_cents / 100.0, strict=True)))

    # No ds in the output: a clear error, nothing written.
    no_ds = conf("no_ds.v1", query="SELECT item_id FROM search_data.items_snapshot "
                                   "WHERE ds BETWEEN '{{ start_date }}' AND '{{ end_date }}'")
    with pytest.raises(RuntimeError,
                       match=r"must return a `ds` column \(the output partition\); it returns \['item_id'\]"):
        drive(spark, wh, "staging-query-backfill", "--conf-path", no_ds, "--end-date", "2024-03-15")
    assert warehouse.list_partitions(wh, "search_features.search_no_ds_v1") == []


def test_join_over_staging_query_output(spark, wh, enriched):
    assert enriched[0].returncode == 0, enriched[0].stderr[-3000:]
    out = drive(spark, wh, "join", "--conf-path", str(ENRICHED_JOIN), "--end-date", "2024-03-17",
                "--start-partition-override", "2024-03-16")
    table = naming.output_table("search_features", "search.enriched_clicks.v1")
    assert out == {"table": table, "partitions": ["2024-03-16", "2024-03-17"]}
    got = read(wh, table, "2024-03-17")
    stats = [f"search_item_clicks_v1_{c}" for c in
             ("click_id_count_1d", "click_id_count_7d", "dwell_time_ms_sum_1d", "dwell_time_ms_sum_7d")]
    assert list(got.columns) == ["item_id", "click_id", "category", "dwell_time_ms", "ts", *stats]
    left = read(wh, "search_features.search_click_events_enriched_v1", "2024-03-17")
    assert sorted(got.click_id) == sorted(left.click_id)
    # count_1d per left row, independently: clicks of the item in [ts - 1d, ts) landed by 03-17.
    clicks = pd.concat(source(wh, "search_data.item_clicks", ds)
                       for ds in warehouse.list_partitions(wh, "search_data.item_clicks") if ds <= "2024-03-17")
    for r in got.itertuples():
        seen = clicks[(clicks.item_id == r.item_id) & (clicks.ts < r.ts) & (clicks.ts >= r.ts - DAY)]
        value = r.search_item_clicks_v1_click_id_count_1d
        assert (None if pd.isna(value) else value) == (len(seen) or None), r.click_id


def test_plain_join_feeds_chained_group_by(spark, wh):
    out = drive(spark, wh, "join", "--conf-path", str(PLAIN_JOIN), "--end-date", "2024-03-17",
                "--start-partition-override", "2024-03-16")
    parent = naming.output_table("search_features", "search.search_clicks.v1")
    assert out == {"table": parent, "partitions": ["2024-03-16", "2024-03-17"]}  # no _pre_mt: no model transforms

    up = drive(spark, wh, "group-by-upload", "--conf-path", str(CHAINED_GB), "--end-date", "2024-03-17")
    assert up == {"table": "search_features.search_user_click_affinity_v1_upload", "partitions": ["2024-03-17"]}
    back = drive(spark, wh, "group-by-backfill", "--conf-path", str(CHAINED_GB), "--end-date", "2024-03-17",
                 "--start-partition-override", "2024-03-16")
    assert back == {"table": "search_features.search_user_click_affinity_v1",
                    "partitions": ["2024-03-16", "2024-03-17"]}

    rows = pd.concat(source(wh, parent, ds) for ds in ("2024-03-16", "2024-03-17"))
    rows = rows[rows.search_item_clicks_v1_click_id_count_7d.notna()]

    def expected(ds: str) -> dict:
        end = int(pd.Timestamp(ds, tz="UTC").timestamp() * 1000) + DAY
        seen = rows[(rows.ds <= ds) & (rows.ts < end)]
        day = seen[seen.ts >= end - DAY]
        out = {}
        for user, g in seen.groupby("user_id"):
            d = day[day.user_id == user]
            out[user] = (d.search_item_clicks_v1_click_id_count_7d.sum() if len(d) else None,
                         g.search_item_clicks_v1_click_id_count_7d.sum(), len(d) or None,
                         g.sort_values("ts").item_id.iloc[-1])
        return out

    def got(df: pd.DataFrame) -> dict:
        return {r.user_id: (None if pd.isna(r.item_clicks_7d_sum_1d) else r.item_clicks_7d_sum_1d,
                            r.item_clicks_7d_sum_7d,
                            None if pd.isna(r.item_clicks_7d_count_1d) else r.item_clicks_7d_count_1d,
                            r.item_id_last)
                for r in df.itertuples()}

    upload = read(wh, up["table"], "2024-03-17")
    assert list(upload.columns) == ["user_id", "item_clicks_7d_sum_1d", "item_clicks_7d_sum_7d",
                                    "item_clicks_7d_count_1d", "item_id_last"]
    assert got(upload) == expected("2024-03-17")
    assert got(read(wh, back["table"], "2024-03-16")) == expected("2024-03-16")

    # Upstream's compiler refuses a JoinSource whose parent has an entities left without a
    # mutationTopic; the engine says so instead of failing on a missing ts column.
    from chronon_local_engine import core

    gb = json.loads(CHAINED_GB.read_text())
    gb["sources"][0]["joinSource"]["join"] = json.loads((CONFIGS / "production/joins/search/plain_join.v1").read_text())
    with pytest.raises(core.NotSupportedByLocalEngine, match="has an entities left source"):
        core.run_group_by_upload(spark, str(wh), gb, "entities_parent", "2024-03-17")
