"""Local-engine driver: ``spark-submit driver.py <subcommand> --conf-path ... --end-date ...``.

Same command-line contract as ``ai.chronon.spark.Driver`` for the subcommands this project runs
(``join``, ``group-by-upload``, ``group-by-backfill``, ``staging-query-backfill``), plus
``--warehouse`` (default ``$CHRONON_WAREHOUSE``). ``group-by-streaming`` is accepted only to fail
with a clear message.
"""
from __future__ import annotations

import sys

# spark-submit puts this file's folder first on sys.path; drop it so sibling module names can
# never shadow a library module.
if sys.path and sys.path[0].rstrip("/").endswith("chronon_local_engine"):
    sys.path.pop(0)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from chronon_airflow.partitions import ds_argument  # noqa: E402

SUBCOMMANDS = ("join", "group-by-upload", "group-by-backfill", "staging-query-backfill", "group-by-streaming")
EXIT_NOT_SUPPORTED = 3


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 1")
    return int(value)


def conf_kind(conf: dict) -> str:
    """``join``, ``group_by`` or ``staging_query`` by the fields each compiled config has."""
    if "left" in conf or "joinParts" in conf:
        return "join"
    if isinstance(conf.get("query"), str) and "sources" not in conf:
        return "staging_query"
    return "group_by"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chronon-local-engine", description=__doc__)
    sub = parser.add_subparsers(dest="subcommand", required=True)
    for name in SUBCOMMANDS:
        p = sub.add_parser(name)
        p.add_argument("--conf-path", required=True)
        if name != "group-by-streaming":
            p.add_argument("--end-date", required=True, type=ds_argument)
        if name in ("join", "group-by-backfill", "staging-query-backfill"):
            p.add_argument("--start-partition-override", type=ds_argument, default=None)
        if name == "staging-query-backfill":
            # Upstream OfflineSubcommand options that change what a staging query backfill computes.
            p.add_argument("--step-days", type=_positive_int, default=30,
                           help="render and run the query this many days at a time (default 30)")
            p.add_argument("--run-first-hole", action="store_true",
                           help="also fill partitions before the earliest existing output partition")
        elif name in ("join", "group-by-backfill", "group-by-upload"):
            # Configs pass it through customJson additional_args (e.g. upstream's "--step-days 14"):
            # the jar splits long ranges into steps; the local engine computes a range in one pass,
            # so the step size changes nothing here.
            p.add_argument("--step-days", type=_positive_int, default=None,
                           help="accepted for the jar's command line; the local engine runs the range at once")
        p.add_argument("--warehouse", default=os.environ.get("CHRONON_WAREHOUSE"),
                       help="parquet warehouse root (default: $CHRONON_WAREHOUSE)")
        if name == "group-by-streaming":
            # Accept the jar's online arguments so the same argv parses, then refuse.
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def run(args: argparse.Namespace, spark=None) -> dict:
    """Run one subcommand; returns ``{"table": ..., "partitions": [...]}``."""
    from chronon_local_engine import core

    conf_path = args.conf_path
    if args.subcommand == "group-by-streaming":
        raise core.NotSupportedByLocalEngine("group-by-streaming", conf_path)
    if not args.warehouse:
        raise SystemExit("no warehouse: pass --warehouse or set CHRONON_WAREHOUSE")
    conf = json.loads(Path(conf_path).read_text())
    kind = conf_kind(conf)
    expected = {"join": "join", "staging-query-backfill": "staging_query"}.get(args.subcommand, "group_by")
    if kind != expected:
        raise SystemExit(f"{conf_path} is a {kind} config, not a {expected} config ({args.subcommand})")

    if spark is None:
        from chronon_local_engine.session import local_session

        spark = local_session()
    column = spark.conf.get("spark.chronon.partition.column", "ds")
    fmt = spark.conf.get("spark.chronon.partition.format", "yyyy-MM-dd")
    if column != "ds" or fmt != "yyyy-MM-dd":
        raise core.NotSupportedByLocalEngine(f"partition column/format {column}/{fmt}", conf_path)

    root = args.warehouse
    if args.subcommand == "join":
        left = conf["left"].get("events") or conf["left"].get("entities") or {}
        start = args.start_partition_override or (left.get("query") or {}).get("startPartition") or args.end_date
        table, partitions = core.run_join(spark, root, conf, conf_path, start, args.end_date)
    elif args.subcommand == "staging-query-backfill":
        from chronon_local_engine.staging_query import run_staging_query

        table, partitions = run_staging_query(
            spark, root, conf, conf_path, args.end_date, start_override=args.start_partition_override,
            step_days=args.step_days, run_first_hole=args.run_first_hole)
    elif args.subcommand == "group-by-upload":
        table, partitions = core.run_group_by_upload(spark, root, conf, conf_path, args.end_date)
    else:
        start = args.start_partition_override or conf.get("backfillStartDate") or args.end_date
        table, partitions = core.run_group_by_backfill(spark, root, conf, conf_path, start, args.end_date)
    return {"table": table, "partitions": partitions}


def main(argv: list[str] | None = None) -> int:
    from chronon_local_engine.core import NotSupportedByLocalEngine

    args = build_parser().parse_args(argv)
    started = time.monotonic()
    try:
        result = run(args)
    except NotSupportedByLocalEngine as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_NOT_SUPPORTED
    parts = result["partitions"]
    written = f"partitions {parts[0]}..{parts[-1]} ({len(parts)})" if parts else "no partition (nothing to fill)"
    print(f"chronon local engine: {args.subcommand} wrote {result['table']} {written} "
          f"in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
