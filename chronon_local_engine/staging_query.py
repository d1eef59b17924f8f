"""``staging-query-backfill``: upstream ``ai.chronon.spark.StagingQuery`` on the local warehouse.

As upstream (``StagingQuery.computeStagingQuery`` with the Driver's defaults):

* ``setups`` run first (statements that need a jar are refused, see :func:`check_setups`);
* without ``startPartition`` the query runs once with ``{{ start_date }}``/``{{ end_date }}``
  rendered as ``null`` (upstream passes Scala ``null`` into the template) and every partition it
  produces is written;
* otherwise the range is [``--start-partition-override`` else ``startPartition``, ``--end-date``]
  (only ``--end-date`` when ``metaData.historicalBackfill`` is false); only its *unfilled*
  partitions are computed (``TableUtils.unfilledRanges``: partitions already in the output table are
  skipped, and so are those before the earliest existing output partition unless
  ``--run-first-hole``), in contiguous chunks split into steps of ``--step-days`` (default 30), the
  query rendered once per step;
* the templates are replaced exactly as ``ParametricMacro`` does (plain text substitution, no
  Jinja): ``start_date``/``end_date`` = the step's bounds, ``latest_date`` = ``--end-date``,
  ``max_date(table=ns.t)`` = the latest committed partition of ``ns.t`` in the warehouse; anything
  still looking like ``{{ word... }}`` afterwards is an error;
* the query must return a ``ds`` column; each partition it produces is (over)written in
  ``<outputNamespace>.<name with [^A-Za-z0-9_] -> _>`` with the warehouse's ``_SUCCESS`` marker,
  columns auto-expanded against the existing table (columns the table has and the query no longer
  returns are written as NULL, new columns are appended).

Warehouse tables become visible to Spark SQL as ``ns.table`` by registering the
``<root>/<ns>/<table>`` folders the SQL names (query and setups; any folder whose table name appears
in it as a word) in the session's in-memory catalog as external partitioned parquet tables (one
database per namespace) with only their committed partitions.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from chronon_airflow import naming, warehouse
from chronon_airflow.partitions import ds_add, ds_range
from chronon_local_engine.core import DS, NotSupportedByLocalEngine, write_produced_partitions

DEFAULT_STEP_DAYS = 30  # upstream OfflineSubcommand --step-days default
_IDENT = re.compile(r"^[A-Za-z0-9_]+$")
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _log(message: str) -> None:
    print(f"chronon local engine: {message}", flush=True)


# ---------------------------------------------------------------------------------------- templates


class MacroError(ValueError):
    """A template that upstream's ParametricMacro / StagingQuery.substitute rejects."""


def _java_split(text: str, sep: str) -> list[str]:
    """Java ``String.split`` with a one-character separator: trailing empty strings are dropped."""
    if text == "":
        return [""]
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def macro_args(group: str) -> dict[str, str]:
    """Upstream ``ParametricMacro.replace`` parsing of an argument group ``(k=v, k2=v2)``.

    Faithful to the Scala fold: a token without ``=`` is appended, after a comma, to the *first*
    argument collected so far, which then moves to the end (with one argument before it, that is
    "glued to the previous one": ``a=b, 3.1`` -> ``a`` = ``b, 3.1``). Keys and values are trimmed;
    a later duplicate key wins.
    """
    inner = group[1:-1]
    parsed: list[str] = []
    for token in _java_split(inner, ","):
        if token.count("=") > 1:
            raise MacroError(f"macro argument {token.strip()!r} has more than one '='")
        if "=" in token:
            parsed.append(token)
        elif not parsed:
            raise MacroError(f"macro arguments {group!r}: {token.strip()!r} is not of the form key=value")
        else:
            parsed = parsed[1:] + [parsed[0] + "," + token]
    out: dict[str, str] = {}
    for arg in parsed:
        kv = [p.strip() for p in _java_split(arg, "=")]
        if len(kv) < 2:
            raise MacroError(f"macro arguments {group!r}: {arg.strip()!r} has no value")
        out[kv[0]] = kv[1]
    return out


def replace_macro(text: str, name: str, func: Callable[[dict[str, str]], str | None]) -> str:
    """Upstream ``ParametricMacro(name, func).replace(text)``.

    Matches ``{{ name }}`` and ``{{ name(args) }}`` (any whitespace inside the braces, arguments
    of ``[\\s0-9A-Za-z_.,=]``); a ``None`` result renders as ``null`` as the Scala string builder does.
    """
    pattern = re.compile(r"\{\{\s*" + re.escape(name) + r"(\([\s0-9A-Za-z_.,=]*\))*\s*}}", re.ASCII)

    def one(m: re.Match) -> str:
        args = macro_args(m.group(1)) if m.group(1) is not None else {}
        result = func(args)
        return "null" if result is None else str(result)

    return pattern.sub(one, text)


_UNRESOLVED = re.compile(r"\{\{\s*\w+.*?}}", re.ASCII)


def substitute(query: str, start: str | None, end: str | None, latest: str | None,
               max_partition: Callable[[str], str | None]) -> str:
    """Upstream ``StagingQuery.substitute``: start_date, end_date, latest_date, then max_date."""

    def max_date(args: dict[str, str]) -> str:
        table = args.get("table")
        if table is None:
            raise MacroError(f"No table in args:[{args}] to macro max_date")
        latest_partition = max_partition(table)
        if latest_partition is None:
            raise MacroError(f"No partitions exist for table {table} to calculate max_date")
        return latest_partition

    rendered = query
    for name, func in (("start_date", lambda _a: start), ("end_date", lambda _a: end),
                       ("latest_date", lambda _a: latest), ("max_date", max_date)):
        rendered = replace_macro(rendered, name, func)
    unresolved = list(dict.fromkeys(_UNRESOLVED.findall(rendered)))
    if unresolved:
        raise MacroError(
            f"Unresolved template macro(s) after substitution: {', '.join(unresolved)}. "
            "Supported macros: start_date, end_date, latest_date, max_date(table=...).")
    return rendered


# ---------------------------------------------------------------------------------------- ranges


def unfilled_ranges(existing: list[str], start: str, end: str,
                    skip_first_hole: bool = True) -> list[tuple[str, str]]:
    """Upstream ``TableUtils.unfilledRanges`` for an output table without input tables.

    The partitions of [start, end] not in ``existing``, as contiguous (start, end) chunks. With
    ``skip_first_hole``, partitions before max(earliest existing partition, start) are left alone
    (upstream assumes retention dropped them).
    """
    if start > end:
        raise ValueError(f"Invalid partition range [{start}, {end}]: start is after end")
    wanted = ds_range(start, end)
    cutoff = max(min(existing), start) if existing else start
    if skip_first_hole:
        skipped = [p for p in wanted if p < cutoff]
        if skipped:
            _log(f"skipping {len(skipped)} partition(s) earlier than the earliest existing output partition "
                 f"({cutoff}): {skipped[0]}..{skipped[-1]}; pass --run-first-hole to backfill them")
        wanted = [p for p in wanted if p >= cutoff]
    have = set(existing)
    chunks: list[tuple[str, str]] = []
    for p in wanted:
        if p in have:
            continue
        if chunks and ds_add(chunks[-1][1], 1) == p:
            chunks[-1] = (chunks[-1][0], p)
        else:
            chunks.append((p, p))
    return chunks


def steps(chunk: tuple[str, str], days: int) -> list[tuple[str, str]]:
    """Upstream ``PartitionRange.steps``: consecutive sub-ranges of ``days`` partitions."""
    if days < 1:
        raise ValueError(f"--step-days must be at least 1, got {days}")
    parts = ds_range(*chunk)
    return [(parts[i], parts[min(i + days, len(parts)) - 1]) for i in range(0, len(parts), days)]


# ---------------------------------------------------------------------------------------- catalog

# Tables this process registered, so a later registration (another warehouse root, in tests) never
# leaves a stale one behind.
_REGISTERED: set[str] = set()


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quote(ident: str) -> str:
    return "`" + ident.replace("`", "``") + "`"


def _committed(root: str, fq_table: str) -> list[str]:
    return [p for p in warehouse.list_partitions(root, fq_table) if _DS.match(p)]


def register_table(spark: SparkSession, root: str, fq_table: str) -> bool:
    """(Re)register ``ns.table`` as an external parquet table partitioned by ``ds`` (a string), with
    exactly its committed partitions. Returns False (and leaves it unregistered) when the table has
    no committed partition with a readable schema."""
    namespace, table = naming.split_table(fq_table)
    name = f"{_quote(namespace)}.{_quote(table)}"
    spark.sql(f"DROP TABLE IF EXISTS {name}")  # external: the files stay
    _REGISTERED.discard(fq_table)
    partitions = _committed(root, fq_table)
    schema = None
    for ds in reversed(partitions):  # the latest partition's schema (auto-expanded writers append columns)
        try:
            schema = spark.read.parquet(str(warehouse.partition_path(root, fq_table, ds))).schema
            break
        except Exception:  # noqa: BLE001 - an empty folder has no schema; try an older partition
            continue
    if schema is None:
        return False
    fields = [f for f in schema.fields if f.name != DS]
    jvm = spark._jvm
    assert jvm is not None  # a classic (py4j) session, as the local engine's always is
    ddl = jvm.org.apache.spark.sql.types.DataType.fromJson(
        json.dumps({"type": "struct", "fields": [json.loads(f.json()) for f in fields]})).toDDL()
    table_dir = str(warehouse.table_path(root, fq_table))
    ns_dir = str(Path(table_dir).parent)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(namespace)} LOCATION {_sql_string(ns_dir)}")
    columns = f"{ddl}, {DS} STRING" if ddl else f"{DS} STRING"
    spark.sql(f"CREATE TABLE {name} ({columns}) USING parquet PARTITIONED BY ({DS}) "
              f"LOCATION {_sql_string(table_dir)}")
    _REGISTERED.add(fq_table)
    if partitions:
        specs = " ".join(f"PARTITION ({DS}={_sql_string(p)})" for p in partitions)
        spark.sql(f"ALTER TABLE {name} ADD IF NOT EXISTS {specs}")
    spark.catalog.refreshTable(f"{namespace}.{table}")
    return True


def mentions(sql: str, fq_table: str) -> bool:
    """Whether ``sql`` can refer to ``ns.table``: its table name appears as a word (qualified,
    back-quoted or not, any case; a bare name also covers ``USE ns`` in a setup)."""
    table = naming.split_table(fq_table)[1]
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(table)}(?![A-Za-z0-9_])", sql, re.IGNORECASE) is not None


def register_warehouse_tables(spark: SparkSession, root: str, sql: str | None = None) -> list[str]:
    """Register every ``<root>/<ns>/<table>`` folder with committed partitions (only those
    :func:`mentions` finds in ``sql`` when it is given: each registration costs a schema read and a
    few catalog statements); returns them. Tables registered before are dropped first."""
    for fq in sorted(_REGISTERED):
        namespace, table = naming.split_table(fq)
        spark.sql(f"DROP TABLE IF EXISTS {_quote(namespace)}.{_quote(table)}")
    _REGISTERED.clear()
    registered: list[str] = []
    base = Path(root)
    if not base.is_dir():
        return registered
    for ns_dir in sorted(base.iterdir()):
        if not ns_dir.is_dir() or not _IDENT.match(ns_dir.name):
            continue
        for table_dir in sorted(ns_dir.iterdir()):
            if table_dir.is_dir() and _IDENT.match(table_dir.name):
                fq = f"{ns_dir.name}.{table_dir.name}"
                if (sql is None or mentions(sql, fq)) and register_table(spark, root, fq):
                    registered.append(fq)
    return registered


# ---------------------------------------------------------------------------------------- setups

# Statements that load code from a jar or ship files: the local engine has neither.
_NEEDS_JAR = [
    re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?(TEMP(ORARY)?\s+)?FUNCTION\s+(IF\s+NOT\s+EXISTS\s+)?"
               r"[\w.`]+\s+AS\s", re.IGNORECASE),
    re.compile(r"^\s*ADD\s+(JARS?|FILES?|ARCHIVES?)\b", re.IGNORECASE),
    re.compile(r"\bUSING\s+(JAR|FILE|ARCHIVE)\s", re.IGNORECASE),
]


def check_setups(setups: list[Any], conf_path: str) -> list[str]:
    """The setups to run, refusing (before anything runs) those that need a jar, e.g.
    ``CREATE TEMPORARY FUNCTION f AS 'com.x.Udf'``. Other statements (``SET``, SQL functions,
    temporary views, ...) run as they are."""
    out = []
    for stmt in setups or []:
        if not isinstance(stmt, str):
            raise ValueError(f"setups must be SQL strings, got {stmt!r} (conf: {conf_path})")
        if any(p.search(stmt) for p in _NEEDS_JAR):
            raise NotSupportedByLocalEngine(
                f"staging query setup {' '.join(stmt.split())!r} (it needs a jar)", conf_path)
        out.append(stmt)
    return out


# ---------------------------------------------------------------------------------------- job


def output_table(conf: Mapping[str, Any]) -> str:
    """``<outputNamespace>.<cleanName>`` (upstream ``metaData.outputTable``)."""
    meta = conf.get("metaData") or {}
    if not meta.get("name"):
        raise ValueError("staging query without metaData.name")
    if not meta.get("outputNamespace"):
        raise ValueError(f"staging query {meta['name']}: output namespace could not be empty or null")
    return naming.output_table(meta["outputNamespace"], meta["name"])


def check_staging_query(conf: Mapping[str, Any], conf_path: str) -> None:
    meta = conf.get("metaData") or {}
    if not isinstance(conf.get("query"), str) or not conf["query"].strip():
        raise ValueError(f"staging query {meta.get('name')} has no query (conf: {conf_path})")
    if conf.get("createView"):
        raise NotSupportedByLocalEngine("staging query createView (a view plus the signal partitions table)",
                                        conf_path)
    custom = meta.get("customJson")
    if custom:
        try:
            extra = (json.loads(custom) or {}).get("additional_partition_cols")
        except (ValueError, AttributeError):
            extra = None
        if extra:
            raise NotSupportedByLocalEngine(f"staging query additional_partition_cols {extra}", conf_path)


def sql_text(conf: Mapping[str, Any]) -> str:
    """The query and the setups: all the SQL that can name a warehouse table."""
    return "\n".join([conf["query"], *(s for s in conf.get("setups") or [] if isinstance(s, str))])


def _max_partition(root: str) -> Callable[[str], str | None]:
    def latest(table: str) -> str | None:
        partitions = _committed(root, table)
        return partitions[-1] if partitions else None
    return latest


def _expand(df: DataFrame, spark: SparkSession, root: str, table: str) -> DataFrame:
    """Upstream ``insertPartitions(autoExpand = true)``: the existing table's columns first (NULL
    when the query no longer returns one), then the query's new columns, ``ds`` last."""
    existing = None
    for ds in reversed(_committed(root, table)):
        try:
            existing = spark.read.parquet(str(warehouse.partition_path(root, table, ds))).schema
            break
        except Exception:  # noqa: BLE001
            continue
    old = [f for f in existing.fields if f.name != DS] if existing else []
    old_names = {f.name for f in old}
    cols = [F.col(_quote(f.name)) if f.name in df.columns else F.lit(None).cast(f.dataType).alias(f.name)
            for f in old]
    cols += [F.col(_quote(c)) for c in df.columns if c != DS and c not in old_names]
    return df.select(*cols, F.col(DS))


def run_query(spark: SparkSession, root: str, conf: Mapping[str, Any], conf_path: str, table: str,
              start: str | None, end: str | None, latest: str) -> list[str]:
    rendered = substitute(conf["query"], start, end, latest, _max_partition(root))
    _log(f"rendered staging query for [{start}, {end}]:\n{rendered}")
    df = spark.sql(rendered)
    if DS not in df.columns:
        raise ValueError(
            f"staging query {conf['metaData']['name']} must return a `{DS}` column (the output partition); "
            f"it returns {df.columns} (conf: {conf_path})")
    df = _expand(df, spark, root, table)
    written = write_produced_partitions(df, root, table)
    if written:
        _log(f"wrote {table} partitions {', '.join(written)}")
        outside = [p for p in written if start and end and not start <= p <= end]
        if outside:
            _log(f"note: the query also wrote partitions outside [{start}, {end}]: {', '.join(outside)}")
    else:
        _log(f"the query returned no rows for [{start}, {end}]: no partition written")
    if written and mentions(sql_text(conf), table):
        register_table(spark, root, table)  # a query reading its own output sees what this step wrote
    return written


def run_staging_query(spark: SparkSession, root: str, conf: Mapping[str, Any], conf_path: str,
                      end_ds: str, start_override: str | None = None,
                      step_days: int | None = DEFAULT_STEP_DAYS,
                      run_first_hole: bool = False) -> tuple[str, list[str]]:
    """``staging-query-backfill``; returns the output table and the partitions written."""
    check_staging_query(conf, conf_path)
    setups = check_setups(conf.get("setups") or [], conf_path)
    table = output_table(conf)
    warehouse.table_path(root, table)  # validates the name
    registered = register_warehouse_tables(spark, root, sql_text(conf))
    _log(f"warehouse tables registered for the query: {', '.join(registered) or 'none'}")
    for stmt in setups:
        _log(f"setup: {stmt}")
        try:
            spark.sql(stmt)
        except Exception as exc:
            raise RuntimeError(f"staging query setup failed: {stmt!r}: {exc} (conf: {conf_path})") from exc

    start_partition = conf.get("startPartition")
    if start_partition is None:
        # Upstream: an unpartitioned input; the query runs once, the override is not used.
        _log("no startPartition: running the query once with start_date/end_date = null")
        return table, run_query(spark, root, conf, conf_path, table, None, None, end_ds)

    meta = conf["metaData"]
    historical = meta.get("historicalBackfill") is None or bool(meta.get("historicalBackfill"))
    if not historical:
        _log(f"historicalBackfill is false: backfilling the latest partition only: {end_ds}")
        start_override = end_ds
    start = start_override or start_partition
    chunks = unfilled_ranges(_committed(root, table), start, end_ds, skip_first_hole=not run_first_hole)
    if not chunks:
        _log(f"no unfilled range for {table} in [{start}, {end_ds}]: nothing to do")
        return table, []
    _log(f"staging query unfilled ranges: {', '.join(f'[{a}, {b}]' for a, b in chunks)}")
    written: list[str] = []
    errors: list[str] = []
    for chunk in chunks:
        try:
            for step in (steps(chunk, step_days) if step_days else [chunk]):
                written += run_query(spark, root, conf, conf_path, table, step[0], step[1], end_ds)
        except NotSupportedByLocalEngine:
            raise
        except Exception as exc:  # upstream: collect per range, fail at the end
            errors.append(f"Error handling range [{chunk[0]}, {chunk[1]}] : {exc}")
    if errors:
        raise RuntimeError("\n".join(f"[{i + 1}/{len(errors)} exceptions]\n{m}" for i, m in enumerate(errors)))
    return table, sorted(set(written))

