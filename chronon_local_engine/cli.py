"""``sample-data``: the local engine's subcommand, added to ``chronon-airflow`` through the
``chronon_airflow.cli`` entry point when the ``engine`` extra is installed."""
from __future__ import annotations

import argparse

from chronon_airflow.partitions import ds_argument


def cmd_sample_data(args: argparse.Namespace) -> int:
    from chronon_local_engine import sample_data

    if args.end < args.start:
        print(f"error: --end {args.end} is before --start {args.start}")
        return 2
    counts = sample_data.generate(args.warehouse, args.start, args.end, seed=args.seed)
    for table, rows in counts.items():
        print(f"{table}: {rows} rows, {args.start}..{args.end}")
    return 0


def add_subcommands(subparsers) -> None:
    p = subparsers.add_parser(
        "sample-data", help="write the deterministic sample source tables the configs read (local engine)")
    p.add_argument("--warehouse", required=True, help="parquet warehouse root")
    p.add_argument("--start", required=True, type=ds_argument, help="first ds, YYYY-MM-DD")
    p.add_argument("--end", required=True, type=ds_argument, help="last ds, YYYY-MM-DD")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.set_defaults(func=cmd_sample_data)
