"""The local engine: a small PySpark re-implementation of the Chronon offline jobs this project runs.

Supported subset (see docs/local_engine.md): events/entities left sources with selects, wheres,
start/endPartition; GroupBy join parts over event sources (and GroupBys over a joinSource) with
SUM, COUNT, AVERAGE, MIN, MAX, LAST, FIRST; windows in days and hours; unwindowed aggregations;
join derivations as Spark SQL; point-in-time correct temporal joins and end-of-day snapshots.
Everything else raises :class:`NotSupportedByLocalEngine`. Staging queries are in
:mod:`chronon_local_engine.staging_query`.

All tables go through :mod:`chronon_airflow.warehouse` (layout, commit markers) and all table and
column names through :mod:`chronon_airflow.naming`, so the model backend and the sensors agree.
Partition folders carry ``ds``; the parquet files inside them do not.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from collections.abc import Mapping
from typing import Any, overload

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from chronon_airflow import naming, warehouse
from chronon_airflow.exceptions import ChrononAirflowError
from chronon_airflow.partitions import ds_add, ds_range

DS = warehouse.PARTITION_COLUMN
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
QUERY_TS = "__query_ts"
QUERY_DS = "__query_ds"

MIN, MAX, FIRST, LAST, COUNT, SUM, AVERAGE = 0, 1, 2, 3, 6, 7, 8
SUPPORTED_OPERATIONS = {MIN, MAX, FIRST, LAST, COUNT, SUM, AVERAGE}
TIME_UNIT_MS = {0: HOUR_MS, 1: DAY_MS}
SNAPSHOT_ACCURACY = 1  # thrift Accuracy: TEMPORAL=0, SNAPSHOT=1


class NotSupportedByLocalEngine(ChrononAirflowError, RuntimeError):
    def __init__(self, feature: str, conf_path: str):
        super().__init__(
            f"{feature} is not supported by the local engine — run it with the Chronon jar (conf: {conf_path})"
        )
        self.feature = feature
        self.conf_path = conf_path


# ---------------------------------------------------------------------------------------- dates
# Daily partitions come from chronon_airflow.partitions (ds_range, ds_add), the package's one
# implementation.


def ds_start_ms(ds_col: Column) -> Column:
    """Epoch millis of 00:00 UTC of a ``YYYY-MM-DD`` column (independent of the session time zone)."""
    return F.datediff(F.to_date(ds_col), F.lit("1970-01-01")).cast("long") * F.lit(DAY_MS)


# ---------------------------------------------------------------------------------------- tables


def read_table(spark: SparkSession, root: str, table: str, start_ds: str | None = None,
               end_ds: str | None = None) -> DataFrame:
    """Committed partitions of ``table`` within [start_ds, end_ds], with ``ds`` as a string column."""
    partitions = warehouse.list_partitions(root, table)
    if not partitions:
        raise FileNotFoundError(f"table {table} has no committed partitions under {root}")
    wanted = [p for p in partitions if (start_ds is None or p >= start_ds) and (end_ds is None or p <= end_ds)]
    base = str(warehouse.table_path(root, table))
    paths = [str(warehouse.partition_path(root, table, p)) for p in (wanted or partitions[:1])]
    # basePath makes Spark add ds from the folder names; the cast keeps ds a string even when
    # partition type inference is on (a date casts back to the same YYYY-MM-DD text).
    df = spark.read.option("basePath", base).parquet(*paths)
    df = df.withColumn(DS, F.col(DS).cast("string"))
    return df if wanted else df.limit(0)


def write_partitions(df: DataFrame, root: str, table: str, partitions: list[str]) -> list[str]:
    """Replace each partition in ``partitions`` with ``df``'s rows for it, committing one by one.

    One Spark write into a hidden staging folder (``partitionBy ds``), then each partition folder
    is moved into place with :func:`warehouse.commit_partition`, which drops the ``_SUCCESS``
    marker per partition. Partitions with no rows are still written (empty, with the schema) so
    downstream sensors see the day as done.
    """
    table_dir = warehouse.table_path(root, table)
    table_dir.mkdir(parents=True, exist_ok=True)
    staging_root = table_dir / f".staging-job-{uuid.uuid4().hex}"
    try:
        df = df.filter(F.col(DS).isin(partitions))
        df.write.mode("overwrite").partitionBy(DS).parquet(str(staging_root))
        for ds in partitions:
            produced = staging_root / f"{DS}={ds}"
            if not produced.is_dir():
                empty = warehouse.staging_path(root, table, ds)
                df.drop(DS).limit(0).coalesce(1).write.mode("overwrite").parquet(str(empty))
                produced = empty
            warehouse.commit_partition(root, table, ds, produced)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return partitions


_DS_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def valid_ds(value: str) -> bool:
    """A real ``YYYY-MM-DD`` date (the warehouse's partition format)."""
    if not _DS_VALUE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def write_produced_partitions(df: DataFrame, root: str, table: str) -> list[str]:
    """Write every partition ``df`` has rows for (its ``ds`` values), committing one by one.

    The writer for queries whose partitions are not known in advance (staging queries): as a Hive
    dynamic-partition overwrite, a ds with no rows is not written and any other partition of the
    table is left as it is. One Spark write into a hidden staging folder; every produced ``ds`` is
    checked to be a ``YYYY-MM-DD`` date before the first commit, so a bad value writes nothing.
    """
    if DS not in df.columns:
        raise ValueError(f"no `{DS}` column to partition {table} by; columns: {df.columns}")
    table_dir = warehouse.table_path(root, table)
    table_dir.mkdir(parents=True, exist_ok=True)
    staging_root = table_dir / f".staging-job-{uuid.uuid4().hex}"
    prefix = f"{DS}="
    try:
        df.withColumn(DS, F.col(DS).cast("string")).write.mode("overwrite").partitionBy(DS).parquet(str(staging_root))
        produced = sorted(p.name[len(prefix):] for p in staging_root.iterdir()
                          if p.is_dir() and p.name.startswith(prefix))
        bad = ["null" if v == "__HIVE_DEFAULT_PARTITION__" else v for v in produced if not valid_ds(v)]
        if bad:
            raise ValueError(f"{table}: {DS} values {bad} are not YYYY-MM-DD dates; nothing was written")
        for ds in produced:
            warehouse.commit_partition(root, table, ds, staging_root / f"{prefix}{ds}")
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return produced


# ---------------------------------------------------------------------------------------- sources


def _check_query(query: Mapping[str, Any], where: str, conf_path: str) -> None:
    if query.get("setups"):
        raise NotSupportedByLocalEngine(f"{where}: query setups (UDF registration)", conf_path)
    if query.get("mutationTimeColumn") or query.get("reversalColumn"):
        raise NotSupportedByLocalEngine(f"{where}: mutations", conf_path)
    if query.get("partitionColumn") not in (None, DS):
        raise NotSupportedByLocalEngine(f"{where}: partitionColumn {query['partitionColumn']!r}", conf_path)


def apply_query(df: DataFrame, query: Mapping[str, Any], with_ts: bool) -> DataFrame:
    """``SELECT <selects>[, <timeColumn> AS ts], ds FROM df WHERE <wheres>`` (wheres see raw columns)."""
    for clause in query.get("wheres") or []:
        df = df.filter(F.expr(f"({clause})"))
    selects = query.get("selects")
    if selects:
        cols = [F.expr(expr).alias(name) for name, expr in selects.items() if name not in ("ts", DS)]
        names = [n for n in selects if n not in ("ts", DS)]
    else:
        names = [c for c in df.columns if c not in ("ts", DS)]
        cols = [F.col(c) for c in names]
    if with_ts:
        time_column = query.get("timeColumn") or (selects or {}).get("ts") or "ts"
        cols.append(F.expr(time_column).cast("long").alias("ts"))
    elif selects and "ts" in selects:
        cols.append(F.expr(selects["ts"]).alias("ts"))
    cols.append(F.col(DS))
    return df.select(*cols)


@overload
def _partition_bounds(query: Mapping[str, Any], start: str, end: str) -> tuple[str, str]: ...
@overload
def _partition_bounds(query: Mapping[str, Any], start: str | None,
                      end: str | None) -> tuple[str | None, str | None]: ...


def _partition_bounds(query: Mapping[str, Any], start: str | None, end: str | None) -> tuple[str | None, str | None]:
    sp, ep = query.get("startPartition"), query.get("endPartition")
    if sp and (start is None or sp > start):
        start = sp
    if ep and (end is None or ep < end):
        end = ep
    return start, end


def read_events_source(spark: SparkSession, root: str, source: Mapping[str, Any], conf_path: str,
                       start_ds: str | None, end_ds: str | None) -> DataFrame:
    """An events or joinSource source as rows with its selects, ``ts`` (epoch ms) and ``ds``."""
    if "events" in source:
        events = source["events"]
        query = events.get("query") or {}
        _check_query(query, f"events source {events.get('table')}", conf_path)
        if events.get("isCumulative"):
            raise NotSupportedByLocalEngine("cumulative events sources", conf_path)
        start_ds, end_ds = _partition_bounds(query, start_ds, end_ds)
        # An empty range (start after end) reads no partition: read_table returns no rows.
        df = read_table(spark, root, events["table"], start_ds, end_ds)
        return apply_query(df, query, with_ts=True).filter(F.col("ts").isNotNull())
    if "joinSource" in source:
        join_source = source["joinSource"]
        parent = join_source["join"]["metaData"]
        query = join_source.get("query") or {}
        _check_query(query, f"joinSource of {parent.get('name')}", conf_path)
        if "events" not in (join_source["join"].get("left") or {}):
            # Upstream takes the data model from the parent's left: entities -> an entities GroupBy
            # (and the compiler requires a mutationTopic on it, i.e. mutations).
            raise NotSupportedByLocalEngine(
                f"GroupBy over a joinSource whose parent join {parent.get('name')} has an entities left source",
                conf_path)
        table = naming.output_table(parent["outputNamespace"], parent["name"])
        start_ds, end_ds = _partition_bounds(query, start_ds, end_ds)
        df = read_table(spark, root, table, start_ds, end_ds)
        return apply_query(df, query, with_ts=True).filter(F.col("ts").isNotNull())
    if "entities" in source:
        raise NotSupportedByLocalEngine("GroupBy over an entities source", conf_path)
    raise NotSupportedByLocalEngine(f"source kind {sorted(source)}", conf_path)


# ---------------------------------------------------------------------------------------- aggregation


def read_group_by_events(spark: SparkSession, root: str, group_by: Mapping[str, Any], keys: list[str],
                         conf_path: str, start_ds: str | None, end_ds: str) -> DataFrame:
    """All of a GroupBy's events sources, unioned: the keys, ts, ds and its aggregations' inputs."""
    inputs = sorted({a["inputColumn"] for a in group_by["aggregations"]})
    events = None
    for source in group_by.get("sources") or []:
        df = read_events_source(spark, root, source, conf_path, start_ds, end_ds).select(*keys, "ts", DS, *inputs)
        events = df if events is None else events.unionByName(df)
    if events is None:
        raise NotSupportedByLocalEngine("GroupBy without sources", conf_path)
    return events


def _windows(agg: Mapping[str, Any], conf_path: str) -> list[tuple[int, int] | None]:
    windows = agg.get("windows") or []
    out: list[tuple[int, int] | None] = []
    for w in windows:
        if w.get("timeUnit") not in TIME_UNIT_MS:
            raise NotSupportedByLocalEngine(f"window time unit {w.get('timeUnit')}", conf_path)
        out.append((int(w["length"]), int(w["timeUnit"])))
    return out or [None]


def check_group_by(group_by: Mapping[str, Any], conf_path: str) -> None:
    name = (group_by.get("metaData") or {}).get("name")
    aggs = group_by.get("aggregations")
    if not aggs:
        raise NotSupportedByLocalEngine(f"GroupBy {name} without aggregations", conf_path)
    for agg in aggs:
        op = agg.get("operation")
        if op not in SUPPORTED_OPERATIONS:
            raise NotSupportedByLocalEngine(
                f"aggregation {naming.OPERATIONS.get(op, op)} in GroupBy {name}", conf_path)
        if agg.get("buckets"):
            raise NotSupportedByLocalEngine(f"bucketed aggregation in GroupBy {name}", conf_path)
        _windows(agg, conf_path)
    if group_by.get("derivations"):
        raise NotSupportedByLocalEngine(f"GroupBy derivations in {name}", conf_path)
    if not group_by.get("keyColumns"):
        raise NotSupportedByLocalEngine(f"GroupBy {name} without keyColumns", conf_path)


def max_window_ms(group_by: Mapping[str, Any], conf_path: str) -> int | None:
    """The longest window in millis, or None when some aggregation is unwindowed."""
    longest = 0
    for agg in group_by["aggregations"]:
        for w in _windows(agg, conf_path):
            if w is None:
                return None
            longest = max(longest, w[0] * TIME_UNIT_MS[w[1]])
    return longest


def aggregate_as_of(queries: DataFrame, events: DataFrame, keys: list[str],
                    aggregations: list[Mapping[str, Any]], conf_path: str,
                    column_name=lambda c: c) -> DataFrame:
    """For each distinct (keys, ``__query_ts``, ``__query_ds``) of ``queries``: the aggregations over
    the events of that key with ``query_ts - window <= ts < query_ts`` (unwindowed: ``ts < query_ts``)
    and whose partition is no later than ``query_ds``. The partition bound makes every result
    depend only on data landed by that day: a late event (landed in a later partition than the
    query's) is not seen, so a range backfill gives exactly what daily runs give.

    Result columns: keys, ``__query_ts`` and one column per aggregation and window, named
    ``column_name(naming.aggregation_column(...))``. An aggregation with no event in its window
    is null (COUNT too), as in Chronon where an empty window has no intermediate result.
    """
    q = queries.select(*keys, QUERY_TS, QUERY_DS).distinct()
    inputs = sorted({a["inputColumn"] for a in aggregations})
    e = events.select(
        *[F.col(k).alias(f"__r_{k}") for k in keys],
        F.col("ts").alias("__r_ts"),
        F.col(DS).alias("__r_ds"),
        *[F.col(c).alias(f"__v_{i}") for i, c in enumerate(inputs)],
    )
    longest = max_window_ms({"aggregations": aggregations}, conf_path)
    cond = [F.col(k) == F.col(f"__r_{k}") for k in keys] + [
        F.col("__r_ts") < F.col(QUERY_TS), F.col("__r_ds") <= F.col(QUERY_DS)]
    if longest is not None:
        cond.append(F.col("__r_ts") >= F.col(QUERY_TS) - F.lit(longest))
    joined = q.join(e, on=_and(cond), how="left")

    exprs = []
    for agg in aggregations:
        op = agg["operation"]
        value = F.col(f"__v_{inputs.index(agg['inputColumn'])}")
        for w in _windows(agg, conf_path):
            in_window = F.col("__r_ts").isNotNull()
            if w is not None:
                in_window = in_window & (F.col("__r_ts") >= F.col(QUERY_TS) - F.lit(w[0] * TIME_UNIT_MS[w[1]]))
            x = F.when(in_window, value)
            # Ordering only for rows whose value counts, so LAST/FIRST skip nulls as Chronon does.
            x_ts = F.when(in_window & value.isNotNull(), F.col("__r_ts"))
            if op == COUNT:
                cnt = F.count(x)
                result = F.when(cnt > 0, cnt)
            elif op == SUM:
                result = F.sum(x)
            elif op == AVERAGE:
                result = F.avg(x)
            elif op == MIN:
                result = F.min(x)
            elif op == MAX:
                result = F.max(x)
            elif op == LAST:
                result = F.max_by(x, x_ts)
            elif op == FIRST:
                result = F.min_by(x, x_ts)
            else:  # pragma: no cover - check_group_by rejects these first
                raise NotSupportedByLocalEngine(f"operation {op}", conf_path)
            exprs.append(result.alias(column_name(naming.aggregation_column(agg["inputColumn"], op, w))))
    return joined.groupBy(*keys, QUERY_TS, QUERY_DS).agg(*exprs)


def _and(conds: list[Column]) -> Column:
    out = conds[0]
    for c in conds[1:]:
        out = out & c
    return out


def right_read_start(first_ds: str, group_by: Mapping[str, Any], conf_path: str) -> str | None:
    """First right partition that can hold an event inside any window of a query on ``first_ds``.

    One extra day covers events stamped after midnight of their partition's day.
    """
    longest = max_window_ms(group_by, conf_path)
    if longest is None:
        return None
    whole_days = -(-longest // DAY_MS)  # ceil
    return ds_add(first_ds, -(whole_days + 1))


# ---------------------------------------------------------------------------------------- join


def check_join(join: Mapping[str, Any], conf_path: str) -> None:
    for key in ("bootstrapParts", "labelPart", "onlineExternalParts"):
        if join.get(key):
            raise NotSupportedByLocalEngine(f"join {key}", conf_path)
    left = join.get("left") or {}
    if "events" not in left and "entities" not in left:
        raise NotSupportedByLocalEngine(f"left source kind {sorted(left)}", conf_path)
    for part in join.get("joinParts") or []:
        gb = part["groupBy"]
        check_group_by(gb, conf_path)
        for source in gb.get("sources") or []:
            if "events" not in source:
                raise NotSupportedByLocalEngine(
                    f"join part {gb['metaData']['name']} over a {sorted(source)[0]} source", conf_path)


def raw_join_table(join: Mapping[str, Any]) -> str:
    """``<ns>.<name>_pre_mt`` when the join has model transforms, else its output table."""
    meta = join["metaData"]
    if join.get("modelTransforms"):
        return naming.pre_mt_table(meta["outputNamespace"], meta["name"])
    return naming.output_table(meta["outputNamespace"], meta["name"])


def compute_join(spark: SparkSession, root: str, join: Mapping[str, Any], conf_path: str,
                 start_ds: str, end_ds: str) -> tuple[DataFrame, list[str]]:
    """The raw join of ``join`` for left partitions [start_ds, end_ds] and the partitions it covers."""
    check_join(join, conf_path)
    left_source = join["left"]
    if "events" in left_source:
        left_kind, left_def = "events", left_source["events"]
        left_table = left_def["table"]
    else:
        left_kind, left_def = "entities", left_source["entities"]
        left_table = left_def["snapshotTable"]
        if left_def.get("mutationTable") or left_def.get("mutationTopic"):
            raise NotSupportedByLocalEngine("entities left source with mutations", conf_path)
    query = left_def.get("query") or {}
    _check_query(query, f"left source {left_table}", conf_path)
    start_ds, end_ds = _partition_bounds(query, start_ds, end_ds)
    partitions = [p for p in warehouse.list_partitions(root, left_table) if start_ds <= p <= end_ds]
    if not partitions:
        raise FileNotFoundError(
            f"left table {left_table} has no committed partitions between {start_ds} and {end_ds} under {root}")
    left = apply_query(read_table(spark, root, left_table, start_ds, end_ds), query,
                       with_ts=left_kind == "events")
    left_columns = [c for c in left.columns if c != DS]
    left = left.cache()

    result = left
    part_columns: list[str] = []
    for part in join.get("joinParts") or []:
        gb = part["groupBy"]
        gb_name = gb["metaData"]["name"]
        keys = list(gb["keyColumns"])
        # keyMapping: left column -> right key column.
        left_for_key = {right: left_col for left_col, right in (part.get("keyMapping") or {}).items()}
        missing = [left_for_key.get(k, k) for k in keys if left_for_key.get(k, k) not in left.columns]
        if missing:
            raise ValueError(f"join part {gb_name}: left side has no column(s) {missing} (conf: {conf_path})")
        if left_kind == "entities":
            query_ts = ds_start_ms(F.col(DS)) + F.lit(DAY_MS)  # end of the left partition's day
        elif gb.get("accuracy") == SNAPSHOT_ACCURACY:
            query_ts = ds_start_ms(F.col(DS))  # as of the end of the previous day
        else:
            query_ts = F.col("ts")
        with_q = result.withColumn(QUERY_TS, query_ts)
        queries = with_q.select(*[F.col(left_for_key.get(k, k)).alias(k) for k in keys], F.col(QUERY_TS),
                                F.col(DS).alias(QUERY_DS))
        events = read_group_by_events(spark, root, gb, keys, conf_path,
                                      right_read_start(partitions[0], gb, conf_path), end_ds)
        prefix = part.get("prefix")
        aggregated = aggregate_as_of(
            queries, events, keys, gb["aggregations"], conf_path,
            column_name=lambda c, _n=gb_name, _p=prefix: naming.join_part_column(_n, c, _p))
        new_cols = [c for c in aggregated.columns if c not in keys and c not in (QUERY_TS, QUERY_DS)]
        aggregated = aggregated.select(*[F.col(k).alias(f"__k_{k}") for k in keys], F.col(QUERY_TS).alias("__k_q"),
                                       F.col(QUERY_DS).alias("__k_ds"), *new_cols)
        # Name-based references only: both sides descend from the same left DataFrame, and
        # DataFrame-bound columns would be ambiguous in that self-join.
        on = [F.col(left_for_key.get(k, k)).eqNullSafe(F.col(f"__k_{k}")) for k in keys]
        on += [F.col(QUERY_TS) == F.col("__k_q"), F.col(DS) == F.col("__k_ds")]
        result = (with_q.join(aggregated, on=_and(on), how="left")
                  .drop(*[f"__k_{k}" for k in keys], "__k_q", "__k_ds", QUERY_TS))
        part_columns += new_cols

    derivations = join.get("derivations") or []
    if derivations:
        keep_all = any(d.get("name") == "*" for d in derivations)
        derived = [d for d in derivations if d.get("name") != "*"]
        derived_names = {d["name"] for d in derived}
        # Upstream: the "true left" columns (left selects, ts) always stay; join-part columns only
        # with a "*" derivation. A derived column replaces a base column of the same name.
        base = left_columns + (part_columns if keep_all else [])
        cols = [F.col(c) for c in base if c not in derived_names]
        cols += [F.expr(d["expression"]).alias(d["name"]) for d in derived]
        result = result.select(*cols, F.col(DS))
    else:
        result = result.select(*left_columns, *part_columns, DS)
    return result, partitions


def run_join(spark: SparkSession, root: str, join: Mapping[str, Any], conf_path: str,
             start_ds: str, end_ds: str) -> tuple[str, list[str]]:
    """``join`` subcommand: write the raw join (``_pre_mt`` for model-transform joins)."""
    df, partitions = compute_join(spark, root, join, conf_path, start_ds, end_ds)
    table = raw_join_table(join)
    write_partitions(df, root, table, partitions)
    return table, partitions


# ---------------------------------------------------------------------------------------- group by


def snapshot_group_by(spark: SparkSession, root: str, group_by: Mapping[str, Any], conf_path: str,
                      partitions: list[str]) -> DataFrame:
    """Per ds in ``partitions``: per key, the aggregations over events with ts < end of ds.

    Keys appear for a ds when at least one of their aggregations is non-null.
    """
    check_group_by(group_by, conf_path)
    keys = list(group_by["keyColumns"])
    events = read_group_by_events(spark, root, group_by, keys, conf_path,
                                  right_read_start(partitions[0], group_by, conf_path), partitions[-1]).cache()
    days = spark.createDataFrame([(d,) for d in partitions], f"{QUERY_DS} string").withColumn(
        QUERY_TS, ds_start_ms(F.col(QUERY_DS)) + F.lit(DAY_MS))
    queries = events.select(*keys).distinct().crossJoin(days)
    aggregated = aggregate_as_of(queries, events, keys, group_by["aggregations"], conf_path)
    agg_cols = [c for c in aggregated.columns if c not in keys and c not in (QUERY_TS, QUERY_DS)]
    aggregated = aggregated.withColumnRenamed(QUERY_DS, DS).drop(QUERY_TS)
    any_value = F.lit(False)
    for c in agg_cols:
        any_value = any_value | F.col(c).isNotNull()
    return aggregated.filter(any_value).select(*keys, *agg_cols, DS)


def run_group_by_upload(spark: SparkSession, root: str, group_by: Mapping[str, Any], conf_path: str,
                        end_ds: str) -> tuple[str, list[str]]:
    """``group-by-upload``: the snapshot as of the end of ``end_ds`` into ``<ns>.<name>_upload``.

    Chronon's real upload table holds avro key/value bytes for the KV store; the local engine
    writes the same content as plain columns (keys + aggregation columns).
    """
    meta = group_by["metaData"]
    df = snapshot_group_by(spark, root, group_by, conf_path, [end_ds])
    table = naming.upload_table(meta["outputNamespace"], meta["name"])
    write_partitions(df, root, table, [end_ds])
    return table, [end_ds]


def run_group_by_backfill(spark: SparkSession, root: str, group_by: Mapping[str, Any], conf_path: str,
                          start_ds: str, end_ds: str) -> tuple[str, list[str]]:
    """``group-by-backfill``: daily end-of-day snapshots for [start, end] into ``<ns>.<name>``."""
    meta = group_by["metaData"]
    if group_by.get("backfillStartDate") and group_by["backfillStartDate"] > start_ds:
        start_ds = group_by["backfillStartDate"]
    partitions = ds_range(start_ds, end_ds)
    df = snapshot_group_by(spark, root, group_by, conf_path, partitions)
    table = naming.output_table(meta["outputNamespace"], meta["name"])
    write_partitions(df, root, table, partitions)
    return table, partitions
