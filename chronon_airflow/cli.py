"""``chronon-airflow`` command line.

Exit codes: 0 ok, 1 config errors (the plan of the good configs is still printed), 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from chronon_airflow import settings
from chronon_airflow.config import load_repo
from chronon_airflow.plan import build_plan

EXIT_OK, EXIT_CONFIG_ERRORS, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors already; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _repo_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=None,
                   help="compiled Chronon repo root (default: $CHRONON_REPO_PATH, else the project's configs/)")


def _load(args: argparse.Namespace):
    root = args.repo or settings.repo_path()
    if not root.is_dir():
        raise SystemExit(_usage(f"--repo {root} is not a directory"))
    return load_repo(root)


def _usage(message: str) -> int:
    print(f"chronon-airflow: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_plan(args: argparse.Namespace) -> int:
    repo = _load(args)
    plan = build_plan(repo)
    if args.json:
        json.dump(plan.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(f"repo: {repo.root}")
        print(f"{len(plan.dags)} DAGs, {len(plan.errors)} config errors")
        for d in plan.dags:
            print(f"\n{d.dag_id}  [{d.kind}]  team={d.team}  schedule={d.schedule or 'manual'}  source={d.source}")
            for t in d.tasks:
                up = f" <- {', '.join(t.upstream)}" if t.upstream else ""
                print(f"  {t.task_id} ({t.kind}){up}")
            if d.reads:
                print(f"  reads:  {', '.join(d.reads)}")
            if d.writes:
                print(f"  writes: {', '.join(d.writes)}")
        for e in plan.errors:
            print(f"error: {e}", file=sys.stderr)
    return EXIT_CONFIG_ERRORS if plan.errors else EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    repo = _load(args)
    # The plan's errors: the loader's plus what only planning finds (a value that may not reach a
    # spark-submit command line), i.e. exactly the list the chronon.config_errors DAG shows.
    errors = build_plan(repo).errors
    for e in errors:
        print(str(e))
    for warning in backend_warnings(repo):
        print(f"warning: {warning}", file=sys.stderr)
    bad = {e.path for e in errors}
    n_confs = sum(1 for c in (*repo.joins.values(), *repo.group_bys.values()) if c.path not in bad)
    print(f"{n_confs} configs ok, {len(errors)} errors", file=sys.stderr)
    return EXIT_CONFIG_ERRORS if errors else EXIT_OK


def backend_warnings(repo) -> list[str]:
    """Model backends whose Airflow connection is not defined: their DAGs are still generated (a
    connection is a deployment setting) but their tasks will fail until it exists."""
    from chronon_airflow.connections import connection_exists  # imports Airflow: only when asked

    out = []
    backends: dict[str, list[str]] = {}
    for join in repo.joins.values():
        for b in join.backends:
            backends.setdefault(b, []).append(join.name)
    for backend, joins in sorted(backends.items()):
        conn_id = settings.backend_conn_id(backend)
        if not connection_exists(conn_id):
            out.append(f"model backend {backend!r} has no Airflow connection {conn_id!r} "
                       f"(used by {', '.join(sorted(joins))}); its tasks will fail until it is defined")
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chronon-airflow", description="Airflow DAGs for Chronon CHIP-9 model transforms, from a compiled Chronon repo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("plan", help="print the DAGs generated from a compiled Chronon repo")
    _repo_arg(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON (a stable contract)")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("validate", help="check a compiled Chronon repo: one line per error, path: field: message")
    _repo_arg(p)
    p.set_defaults(func=cmd_validate)
    for module in _extensions():
        module.add_subcommands(sub)
    return parser


EXTENSION_GROUP = "chronon_airflow.cli"


def _extensions() -> list:
    """``register``/``infer`` (model backend calls), then the subcommands of whichever tool extras
    are installed (``backend`` from the reference backend, ``sample-data`` from the local engine),
    found through the ``chronon_airflow.cli`` entry point group: the product never imports them."""
    from importlib.metadata import entry_points

    from chronon_airflow import cli_backend

    modules = [cli_backend]
    for ep in sorted(entry_points(group=EXTENSION_GROUP), key=lambda e: e.name):
        try:
            modules.append(ep.load())
        except ImportError:  # a tool whose extra's dependencies are missing: its commands are absent
            continue
    return modules


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
