"""The local engine against small hand-computed cases, in ONE in-process SparkSession.

Times below are built from D0 = 2024-01-10 00:00 UTC; every expected number is worked out by hand
in the comments next to it.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronon_airflow import naming, warehouse

pytestmark = pytest.mark.spark

H = 3_600_000
DAY = 24 * H
D0 = int(dt.datetime(2024, 1, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)
MIN, MAX, FIRST, LAST, COUNT, SUM, AVERAGE = 0, 1, 2, 3, 6, 7, 8
DAYS, HOURS = 1, 0


@pytest.fixture(scope="session")
def spark():
    import logging

    from chronon_local_engine.session import local_session

    # py4j logs "Closing down clientserver connection" from __del__ after pytest closed its streams.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    session = local_session("chronon-engine-tests", master="local[2]")
    yield session
    session.stop()


def write(root: Path, table: str, ds: str, rows: list[dict], schema: pa.Schema) -> None:
    staging = warehouse.staging_path(root, table, ds)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), staging / "part-0.parquet")
    warehouse.commit_partition(root, table, ds, staging)


CLICK_SCHEMA = pa.schema([("item_id", pa.string()), ("v", pa.int64()), ("ts", pa.int64())])
LEFT_SCHEMA = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("ts", pa.int64())])
SNAP_SCHEMA = pa.schema([("item_id", pa.string()), ("price", pa.int64())])

# Right events for item "x" (value v); partition in brackets.
CLICKS = {
    "2024-01-03": [
        {"item_id": "x", "v": 32, "ts": D0 + 12 * H - 7 * DAY - 1},  # e6: 1 ms before the 7d window of L1
        {"item_id": "x", "v": 64, "ts": D0 + 12 * H - 7 * DAY},      # e7: exactly on L1's 7d window start
    ],
    "2024-01-09": [
        {"item_id": "x", "v": 1, "ts": D0 + 12 * H - DAY},           # e1: exactly on L1's 1d window start
        {"item_id": "x", "v": 2, "ts": D0 + 12 * H - DAY - 1},       # e2: 1 ms before it
        {"item_id": "z", "v": 1000, "ts": D0 - 2 * H},               # other key, never joined to x
    ],
    "2024-01-10": [
        {"item_id": "x", "v": 16, "ts": D0 - H},                     # e5: LATE: 01-09 23:00, landed 01-10
        {"item_id": "x", "v": 8, "ts": D0 + 11 * H},                 # e4
        {"item_id": "x", "v": None, "ts": D0 + 11 * H + H // 2},     # e8: null value
        {"item_id": "x", "v": 4, "ts": D0 + 12 * H},                 # e3: same ts as L1 -> not seen by L1
        {"item_id": "x", "v": 128, "ts": D0 + 13 * H},               # e10: after L1
    ],
}


def group_by(name: str, aggregations: list[dict], table: str = "t.clicks") -> dict:
    return {
        "metaData": {"name": name, "team": "t", "outputNamespace": "t_features"},
        "sources": [{"events": {"table": table, "query": {
            "selects": {"item_id": "item_id", "v": "v"}, "timeColumn": "ts", "startPartition": "2024-01-01"}}}],
        "keyColumns": ["item_id"],
        "aggregations": aggregations,
    }


def agg(op: int, *windows: tuple[int, int]) -> dict:
    out = {"inputColumn": "v", "operation": op, "argMap": {}}
    if windows:
        out["windows"] = [{"length": n, "timeUnit": u} for n, u in windows]
    return out


AGGS = [
    agg(SUM, (1, DAYS), (7, DAYS), (1, HOURS)),
    agg(COUNT, (1, DAYS)),
    agg(AVERAGE, (7, DAYS)),
    agg(MIN, (7, DAYS)),
    agg(MAX, (7, DAYS)),
    agg(SUM),
    agg(LAST),
    agg(FIRST),
]


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("warehouse")
    for ds, rows in CLICKS.items():
        write(root, "t.clicks", ds, rows, CLICK_SCHEMA)
    write(root, "t.left", "2024-01-09", [
        {"user_id": "d", "item_id": "x", "ts": D0 - 30 * 60_000},   # L4: 01-09 23:30
    ], LEFT_SCHEMA)
    write(root, "t.left", "2024-01-10", [
        {"user_id": "a", "item_id": "x", "ts": D0 + 12 * H},        # L1
        {"user_id": "b", "item_id": "y", "ts": D0 + H},             # L2: key without events
        {"user_id": "c", "item_id": "x", "ts": D0 + 11 * H},        # L3: same ts as e4
        {"user_id": "blocked", "item_id": "x", "ts": D0 + 12 * H},  # removed by the where clause
    ], LEFT_SCHEMA)
    for ds in ("2024-01-09", "2024-01-10"):
        write(root, "t.items", ds, [{"item_id": "x", "price": 5}, {"item_id": "y", "price": 7}], SNAP_SCHEMA)
    return root


def events_join(derivations=None, aggregations=AGGS) -> dict:
    join = {
        "metaData": {"name": "t.events_join.v1", "team": "t", "outputNamespace": "t_features"},
        "left": {"events": {"table": "t.left", "query": {
            "selects": {"user_id": "user_id", "item_id": "item_id", "ts": "ts"},
            "wheres": ["user_id != 'blocked'"], "timeColumn": "ts", "startPartition": "2024-01-01"}}},
        "joinParts": [{"groupBy": group_by("t.clicks.v1", aggregations)}],
    }
    if derivations is not None:
        join["derivations"] = derivations
    return join


def col(name: str) -> str:
    return f"t_clicks_v1_{name}"


def rows_by(df, key: str) -> dict:
    return {r[key]: r.asDict() for r in df.collect()}


def test_temporal_join_point_in_time(spark, wh):
    from chronon_local_engine import core

    df, partitions = core.compute_join(spark, str(wh), events_join(), "t/joins/events_join", "2024-01-09", "2024-01-10")
    assert partitions == ["2024-01-09", "2024-01-10"]
    rows = rows_by(df, "user_id")
    assert set(rows) == {"a", "b", "c", "d"}  # where clause dropped "blocked"

    a = rows["a"]  # L1 at D0+12h
    # 1d = [D0-12h, D0+12h): e1(1) e5(16) e4(8) e8(null); e2 is 1 ms early, e3 is at ts (excluded).
    assert a[col("v_sum_1d")] == 1 + 16 + 8
    assert a[col("v_count_1d")] == 3  # the null value does not count
    # 7d = [D0+12h-7d, D0+12h): e7(64) e2(2) e1(1) e5(16) e4(8); e6 is 1 ms early.
    assert a[col("v_sum_7d")] == 64 + 2 + 1 + 16 + 8
    assert a[col("v_average_7d")] == pytest.approx(91 / 5)
    assert a[col("v_min_7d")] == 1
    assert a[col("v_max_7d")] == 64
    # 1h = [D0+11h, D0+12h): e4(8) exactly on the start, e8 is null.
    assert a[col("v_sum_1h")] == 8
    # Unwindowed: everything before D0+12h.
    assert a[col("v_sum")] == 32 + 64 + 1 + 2 + 16 + 8
    assert a[col("v_last")] == 8    # e8 is later but null: skipped
    assert a[col("v_first")] == 32  # e6, the oldest
    assert a["ts"] == D0 + 12 * H and a["ds"] == "2024-01-10"

    c = rows["c"]  # L3 at D0+11h: e4 has the same ts, so it is not seen.
    # 1d = [D0-13h, D0+11h): e2(2) e1(1) e5(16)
    assert c[col("v_sum_1d")] == 19 and c[col("v_count_1d")] == 3
    assert c[col("v_sum_1h")] is None  # [D0+10h, D0+11h) is empty
    assert c[col("v_last")] == 16

    b = rows["b"]  # no events for item y at all: every aggregation is null, COUNT included
    assert all(b[col(n)] is None for n in ("v_sum_1d", "v_count_1d", "v_sum", "v_last", "v_average_7d"))

    d = rows["d"]  # L4 at 01-09 23:30 in partition 01-09
    # 1d = [01-08 23:30, 01-09 23:30): e1(1) e2(2). The late e5 (01-09 23:00) landed in 01-10, after
    # this row's partition, so it is not seen.
    assert d[col("v_sum_1d")] == 3 and d[col("v_count_1d")] == 2
    assert d["ds"] == "2024-01-09"


def test_entities_left_snapshot(spark, wh):
    from chronon_local_engine import core

    join = {
        "metaData": {"name": "t.snap_join.v1", "team": "t", "outputNamespace": "t_features"},
        "left": {"entities": {"snapshotTable": "t.items", "query": {
            "selects": {"item_id": "item_id", "price": "price"}, "startPartition": "2024-01-01"}}},
        "joinParts": [{"groupBy": group_by("t.clicks.v1", [agg(SUM, (1, DAYS)), agg(COUNT, (1, DAYS))])}],
    }
    df, _ = core.compute_join(spark, str(wh), join, "t/joins/snap", "2024-01-09", "2024-01-10")
    got = {(r["item_id"], r["ds"]): (r[col("v_sum_1d")], r[col("v_count_1d")]) for r in df.collect()}
    # ds 01-09, window [D0-1d, D0) and partitions <= 01-09: e1(1) e2(2); late e5 is in 01-10.
    assert got[("x", "2024-01-09")] == (3, 2)
    # ds 01-10, window [D0, D0+1d): e4(8) e8(null) e3(4) e10(128); e5 (D0-1h) is before the window.
    assert got[("x", "2024-01-10")] == (140, 3)
    assert got[("y", "2024-01-10")] == (None, None)
    assert set(df.columns) == {"item_id", "price", col("v_sum_1d"), col("v_count_1d"), "ds"}


def test_derivations_keep_left_columns_and_drop_base_without_star(spark, wh):
    from chronon_local_engine import core

    deriv = [{"name": "double_sum", "expression": f"{col('v_sum_1d')} * 2"}]
    df, _ = core.compute_join(spark, str(wh), events_join(deriv, [agg(SUM, (1, DAYS))]), "p",
                              "2024-01-10", "2024-01-10")
    assert df.columns == ["user_id", "item_id", "ts", "double_sum", "ds"]
    assert rows_by(df, "user_id")["a"]["double_sum"] == 50  # 2 * 25

    star = [{"name": "*", "expression": "*"}] + deriv
    df, _ = core.compute_join(spark, str(wh), events_join(star, [agg(SUM, (1, DAYS))]), "p", "2024-01-10", "2024-01-10")
    assert df.columns == ["user_id", "item_id", "ts", col("v_sum_1d"), "double_sum", "ds"]


def test_run_join_writes_pre_mt_with_markers(spark, wh):
    from chronon_local_engine import core

    join = events_join([{"name": "s", "expression": col("v_sum_1d")}], [agg(SUM, (1, DAYS))])
    join["modelTransforms"] = {"transforms": []}
    table, partitions = core.run_join(spark, str(wh), join, "p", "2024-01-09", "2024-01-10")
    assert table == naming.pre_mt_table("t_features", "t.events_join.v1") == "t_features.t_events_join_v1_pre_mt"
    assert warehouse.list_partitions(wh, table) == ["2024-01-09", "2024-01-10"]
    written = spark.read.parquet(str(warehouse.partition_path(wh, table, "2024-01-10")))
    assert "ds" not in written.columns  # ds lives in the folder name only
    assert sorted((r["user_id"], r["s"]) for r in written.collect()) == [("a", 25), ("b", None), ("c", 19)]
    # No staging leftovers.
    assert not [p for p in warehouse.table_path(wh, table).iterdir() if p.name.startswith(".")]


def test_group_by_upload_and_backfill(spark, wh):
    from chronon_local_engine import core

    gb = group_by("t.clicks.v1", [agg(SUM, (1, DAYS)), agg(COUNT, (1, DAYS)), agg(LAST)])
    table, _ = core.run_group_by_upload(spark, str(wh), gb, "p", "2024-01-10")
    assert table == "t_features.t_clicks_v1_upload"
    up = rows_by(spark.read.parquet(str(warehouse.partition_path(wh, table, "2024-01-10"))), "item_id")
    # End of 01-10: 1d = [D0, D0+1d): 8 + null + 4 + 128. LAST over all: e10 (128).
    assert up["x"] == {"item_id": "x", "v_sum_1d": 140, "v_count_1d": 3, "v_last": 128}
    # z's only event is 01-09 22:00: outside the 1d window, but LAST (unwindowed) keeps the key.
    assert up["z"] == {"item_id": "z", "v_sum_1d": None, "v_count_1d": None, "v_last": 1000}

    table, parts = core.run_group_by_backfill(spark, str(wh), gb, "p", "2024-01-09", "2024-01-10")
    assert table == "t_features.t_clicks_v1" and parts == ["2024-01-09", "2024-01-10"]
    got = {(r["item_id"], r["ds"]): (r["v_sum_1d"], r["v_last"])
           for r in core.read_table(spark, str(wh), table).collect()}
    # End of 01-09, partitions <= 01-09: 1d = [D0-1d, D0): e1(1) e2(2) z(1000); LAST x = e1 (D0-12h).
    assert got == {("x", "2024-01-09"): (3, 1), ("z", "2024-01-09"): (1000, 1000),
                   ("x", "2024-01-10"): (140, 128), ("z", "2024-01-10"): (None, 1000)}


def test_group_by_over_join_source(spark, wh):
    """A chained GroupBy reads its parent join's output table through the joinSource query."""
    from chronon_local_engine import core

    parent = events_join([{"name": "s", "expression": col("v_sum_1d")}], [agg(SUM, (1, DAYS))])
    out = naming.output_table("t_features", "t.events_join.v1")
    df, parts = core.compute_join(spark, str(wh), parent, "p", "2024-01-09", "2024-01-10")
    core.write_partitions(df, str(wh), out, parts)
    chained = {
        "metaData": {"name": "t.user_stats.v1", "team": "t", "outputNamespace": "t_features"},
        "sources": [{"joinSource": {"join": parent, "query": {
            "selects": {"user_id": "user_id", "score": "s"}, "wheres": ["s IS NOT NULL"], "timeColumn": "ts"}}}],
        "keyColumns": ["user_id"],
        "aggregations": [{"inputColumn": "score", "operation": MAX, "argMap": {}}],
    }
    table, _ = core.run_group_by_upload(spark, str(wh), chained, "p", "2024-01-10")
    got = {r["user_id"]: r["score_max"] for r in
           spark.read.parquet(str(warehouse.partition_path(wh, table, "2024-01-10"))).collect()}
    # Parent rows with s: a=25, c=19, d=3; b (null) is filtered by the where clause.
    assert got == {"a": 25, "c": 19, "d": 3}


@pytest.mark.parametrize(
    "mutate,feature",
    [
        (lambda j: j["joinParts"][0]["groupBy"]["aggregations"].append(
            {"inputColumn": "v", "operation": 12, "argMap": {}}), "approx_percentile"),
        (lambda j: j["joinParts"][0]["groupBy"]["sources"].__setitem__(
            0, {"entities": {"snapshotTable": "t.items", "query": {}}}), "entities"),
        (lambda j: j.__setitem__("bootstrapParts", [{"table": "t.x"}]), "bootstrapParts"),
        (lambda j: j["left"]["events"]["query"].__setitem__("setups", ["CREATE FUNCTION f"]), "setups"),
        (lambda j: j["joinParts"][0]["groupBy"]["aggregations"][0].__setitem__(
            "windows", [{"length": 5, "timeUnit": 2}]), "time unit"),
    ],
)
def test_outside_subset_is_a_clear_error(spark, wh, mutate, feature):
    from chronon_local_engine import core

    join = json.loads(json.dumps(events_join(aggregations=[agg(SUM, (1, DAYS))])))
    mutate(join)
    with pytest.raises(core.NotSupportedByLocalEngine) as err:
        core.compute_join(spark, str(wh), join, "repo/production/joins/t/bad.v1", "2024-01-10", "2024-01-10")
    message = str(err.value)
    assert "not supported by the local engine — run it with the Chronon jar" in message
    assert feature in message and "repo/production/joins/t/bad.v1" in message


def test_driver_cli_in_process(spark, wh, tmp_path):
    """The driver's argv contract, run in this process (the spark-submit run is in test_engine_operator)."""
    from chronon_local_engine import driver

    conf_path = tmp_path / "t.clicks.v1"
    conf_path.write_text(json.dumps(group_by("t.clicks.v1", [agg(COUNT, (1, DAYS))])))
    args = driver.build_parser().parse_args(
        ["group-by-upload", "--conf-path", str(conf_path), "--end-date", "2024-01-10", "--warehouse", str(wh)])
    assert driver.run(args, spark=spark) == {"table": "t_features.t_clicks_v1_upload", "partitions": ["2024-01-10"]}
    with pytest.raises(SystemExit):
        driver.build_parser().parse_args(["join", "--conf-path", "x", "--end-date", "2024-13-01"])
    streaming = driver.build_parser().parse_args(["group-by-streaming", "--conf-path", str(conf_path)])
    with pytest.raises(Exception, match="group-by-streaming is not supported by the local engine"):
        driver.run(streaming, spark=spark)


def test_sample_data_is_deterministic(tmp_path):
    from chronon_local_engine import sample_data

    first = sample_data.generate(tmp_path / "a", "2024-01-01", "2024-01-03", seed=3)
    sample_data.generate(tmp_path / "b", "2024-01-02", "2024-01-02", seed=3)
    assert set(first) == {"search_data.search_events", "search_data.item_clicks",
                          "search_data.items_snapshot", "payments.card_transactions"}
    for table in first:
        assert warehouse.list_partitions(tmp_path / "a", table) == ["2024-01-01", "2024-01-02", "2024-01-03"]
        a = pq.read_table(warehouse.partition_path(tmp_path / "a", table, "2024-01-02"))
        b = pq.read_table(warehouse.partition_path(tmp_path / "b", table, "2024-01-02"))
        assert a.equals(b) and 0 < a.num_rows < 1000
    clicks = pq.read_table(warehouse.partition_path(tmp_path / "a", "search_data.item_clicks", "2024-01-02"))
    day_start = int(dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc).timestamp() * 1000)
    ts = clicks.column("ts").to_pylist()
    assert any(t < day_start for t in ts), "some clicks should arrive late"
    assert all(day_start - DAY < t < day_start + DAY for t in ts)
    assert clicks.schema.field("ts").type == pa.int64()
    other = sample_data.generate(tmp_path / "c", "2024-01-02", "2024-01-02", seed=4)
    assert other != {k: 0 for k in other}
    c = pq.read_table(warehouse.partition_path(tmp_path / "c", "search_data.item_clicks", "2024-01-02"))
    assert not c.equals(clicks)


def test_cli_sample_data(tmp_path, capsys):
    from chronon_airflow import cli

    # The real CLI: sample-data comes from the local engine's entry point.
    parser = cli.build_parser()
    args = parser.parse_args(["sample-data", "--warehouse", str(tmp_path),
                              "--start", "2024-01-01", "--end", "2024-01-02"])
    assert args.func(args) == 0
    assert "search_data.search_events" in capsys.readouterr().out
    assert warehouse.list_partitions(tmp_path, "payments.card_transactions") == ["2024-01-01", "2024-01-02"]
    bad = parser.parse_args(["sample-data", "--warehouse", str(tmp_path),
                             "--start", "2024-01-03", "--end", "2024-01-02"])
    assert bad.func(bad) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["sample-data", "--warehouse", str(tmp_path), "--start", "01/02/2024", "--end", "2024-01-02"])


def test_configs_model_transform_joins_produce_pre_mt(spark, configs_repo, tmp_path):
    """Every model-transform join of configs/ runs on generated data and writes its _pre_mt table."""
    from chronon_local_engine import core, sample_data

    sample_data.generate(tmp_path, "2024-03-14", "2024-03-16", seed=5)
    joins = [json.loads(p.read_text()) | {"__path": str(p)}
             for p in sorted((configs_repo / "production" / "joins").glob("*/*"))]
    mt = [j for j in joins if j.get("modelTransforms")]
    assert mt, "configs/ should have model-transform joins"
    for join in mt:
        path = join.pop("__path")
        table, parts = core.run_join(spark, str(tmp_path), join, path, "2024-03-15", "2024-03-16")
        meta = join["metaData"]
        assert table == naming.pre_mt_table(meta["outputNamespace"], meta["name"])
        assert warehouse.list_partitions(tmp_path, table) == ["2024-03-15", "2024-03-16"]
        written = spark.read.parquet(str(warehouse.partition_path(tmp_path, table, "2024-03-16")))
        # Every column the model step needs: model inputs and passthrough fields.
        needed = set(join["modelTransforms"].get("passthroughFields") or [])
        for t in join["modelTransforms"]["transforms"]:
            needed |= set((t.get("inputMappings") or {}).values())
        assert needed <= set(written.columns), (meta["name"], needed - set(written.columns))
        assert written.count() > 0


def test_configs_group_by_upload(spark, configs_repo, tmp_path):
    from chronon_local_engine import core, sample_data

    sample_data.generate(tmp_path, "2024-03-14", "2024-03-15", seed=5)
    conf = json.loads((configs_repo / "production" / "group_bys" / "risk" / "user_txn_stats.v1").read_text())
    table, _ = core.run_group_by_upload(spark, str(tmp_path), conf, "user_txn_stats.v1", "2024-03-15")
    assert table == "risk_features.risk_user_txn_stats_v1_upload"
    df = spark.read.parquet(str(warehouse.partition_path(tmp_path, table, "2024-03-15"))).toPandas()
    txns = pd.concat(pq.read_table(warehouse.partition_path(tmp_path, "payments.card_transactions", ds)).to_pandas()
                     for ds in ("2024-03-15",))  # startPartition is 2024-03-15: 03-14 is not read
    # End of 03-15: the 1d count is that day's transactions per user.
    expected = txns.groupby("user_id").txn_id.count().to_dict()
    assert dict(zip(df.user_id, df.txn_id_count_1d, strict=True)) == expected
