"""``chronon-airflow`` command line.

Exit codes: 0 ok, 1 config errors (the plan of the good configs is still printed), 2 usage error;
``plan --diff``: 3 when the change alters the plan (see :func:`cmd_plan_diff`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from chronon_airflow import settings
from chronon_airflow.exceptions import ChrononAirflowError, InvalidConfig

EXIT_OK, EXIT_CONFIG_ERRORS, EXIT_USAGE = 0, 1, 2
EXIT_CHANGES = 3  # plan --diff: the repo change changes what Airflow runs


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors already; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _repo_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, default=None,
                   help="compiled Chronon repo root (default: $CHRONON_REPO_PATH, else the project's configs/)")


def _load(args: argparse.Namespace):
    """The repo and its plan for this process's deployment (``[chronon]`` settings from the
    environment or airflow.cfg, and the Spark connection), exactly as the DAG file builds them."""
    from chronon_airflow.plan.load import load_plan

    root = args.repo or settings.repo_path()
    if not root.is_dir():
        raise SystemExit(_usage(f"--repo {root} is not a directory"))
    try:
        return load_plan(root)
    except InvalidConfig as e:
        raise SystemExit(_usage(f"{e.field}: {e.message}" if e.field else e.message)) from None


def _usage(message: str) -> int:
    print(f"chronon-airflow: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_plan(args: argparse.Namespace) -> int:
    if args.diff is not None:
        return cmd_plan_diff(args)
    if args.exit_zero:
        raise SystemExit(_usage("--exit-zero only applies to plan --diff"))
    repo, plan = _load(args)
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
                skip = f"  [skips: {t.skip_reason}]" if t.skip_reason else ""
                print(f"  {t.task_id} ({t.kind}){up}{skip}")
            if d.reads:
                print(f"  reads:  {', '.join(d.reads)}")
            if d.writes:
                print(f"  writes: {', '.join(d.writes)}")
        for e in plan.errors:
            print(f"error: {e}", file=sys.stderr)
        for w in plan.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return EXIT_CONFIG_ERRORS if plan.errors else EXIT_OK


# -- plan --diff ----------------------------------------------------------------------------------

GIT_SIDE = "git:"
# Variables that would point git at another repository than the one holding --repo (set in hooks).
_GIT_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_PREFIX", "GIT_NAMESPACE")


def cmd_plan_diff(args: argparse.Namespace) -> int:
    """``plan --diff OLD [NEW]``: what the change from repo OLD to repo NEW (default: the ``--repo``
    folder) does to Airflow. A side is a repo folder or ``git:<rev>``, the ``--repo`` folder at that
    git revision. Both sides are planned for the same deployment, so only the repo change shows.

    Exit codes: 0 no change to Airflow, 3 changes, 1 the NEW side has config errors (before 3),
    2 usage error; ``--exit-zero``: 0 unless a usage error."""
    from chronon_airflow.plan.diff import diff_plans, format_text, replace_root
    from chronon_airflow.plan.load import load_plan

    if len(args.diff) > 2:
        raise SystemExit(_usage("--diff takes OLD [NEW]: one or two repo folders or git:<rev>"))
    repo = args.repo or settings.repo_path()
    specs = [*args.diff, None][:2]  # None: the --repo folder as it is
    with tempfile.TemporaryDirectory(prefix="chronon-plan-diff-") as tmp:
        sides = [_diff_side(spec, repo, Path(tmp) / name) for spec, name in zip(specs, ("old", "new"), strict=True)]
        deployment = _deployment()
        docs, plans = [], []
        for side in sides:
            try:
                loaded, plan = load_plan(side["root"], deployment)
            except InvalidConfig as e:
                raise SystemExit(_usage(f"{e.field}: {e.message}" if e.field else e.message)) from None
            # spark-submit argv holds absolute conf paths: compare both sides relative to their root.
            docs.append(replace_root(plan.to_dict(), loaded.root))
            plans.append(plan)
    diff = diff_plans(*docs)
    old, new = sides
    if args.json:
        out = {"old": {k: old[k] for k in ("repo", "revision", "commit")},
               "new": {k: new[k] for k in ("repo", "revision", "commit")}, **diff}
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        sys.stdout.write(format_text(diff, old["label"], new["label"]))
        for err in plans[1].errors:
            print(f"error: {err}", file=sys.stderr)
    if args.exit_zero:
        return EXIT_OK
    if plans[1].errors:
        return EXIT_CONFIG_ERRORS
    return EXIT_CHANGES if diff["changed"] else EXIT_OK


def _deployment():
    """This process's deployment, resolved once for both sides of a diff."""
    from chronon_airflow.deployment import resolve_deployment

    try:
        return resolve_deployment()
    except InvalidConfig as e:
        raise SystemExit(_usage(f"{e.field}: {e.message}" if e.field else e.message)) from None


def _diff_side(spec: str | None, repo: Path, dest: Path) -> dict:
    """One side of a diff: ``{"root", "label", "repo", "revision", "commit"}``; a ``git:<rev>``
    side is written to ``dest`` first."""
    if spec is None or not spec.startswith(GIT_SIDE):
        root = repo if spec is None else Path(spec).expanduser()
        if not root.is_dir():
            raise SystemExit(_usage(f"{'--repo ' if spec is None else ''}{root} is not a directory"))
        return {"root": root, "label": str(spec if spec is not None else root), "repo": str(root.resolve()),
                "revision": None, "commit": None}
    rev = spec[len(GIT_SIDE):]
    if not rev or rev.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in rev):
        raise SystemExit(_usage(f"{spec!r}: not a git revision"))
    if not repo.is_dir():
        raise SystemExit(_usage(f"--repo {repo} is not a directory"))
    commit = _checkout(repo, rev, dest)
    return {"root": dest, "label": f"{spec} ({commit[:12]})", "repo": str(repo.resolve()), "revision": rev,
            "commit": commit}


def _git(cwd: Path, *argv: str, stdin: bytes | None = None) -> bytes:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_ENV}
    try:
        out = subprocess.run(["git", "-C", str(cwd), *argv], input=stdin, capture_output=True, env=env,
                             check=False)
    except FileNotFoundError:
        raise SystemExit(_usage("git:<rev> needs git, which is not installed")) from None
    if out.returncode != 0:
        message = out.stderr.decode(errors="replace").strip().splitlines()
        raise _GitError(message[-1] if message else f"git {argv[0]} failed")
    return out.stdout


class _GitError(ChrononAirflowError):
    pass


def _checkout(repo: Path, rev: str, dest: Path) -> str:
    """Write the files of folder ``repo`` as they are at git revision ``rev`` to ``dest``; the commit."""
    try:
        top = Path(_git(repo, "rev-parse", "--show-toplevel").decode().strip()).resolve()
    except _GitError as e:
        raise SystemExit(_usage(f"--repo {repo} is not in a git work tree ({e})")) from None
    try:
        prefix = repo.resolve().relative_to(top).as_posix()
    except ValueError:
        raise SystemExit(_usage(f"--repo {repo} is not inside its git work tree {top}")) from None
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except _GitError:
        commit = ""
    if not commit:
        raise SystemExit(_usage(f"git:{rev}: no such revision in {top}"))
    pathspec = [] if prefix == "." else ["--", prefix]
    try:
        listing = _git(top, "--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", commit, *pathspec)
    except _GitError as e:
        raise SystemExit(_usage(f"git:{rev}: {e}")) from None
    entries: list[tuple[str, str, str]] = []  # (mode, object id, path relative to the repo folder)
    for record in filter(None, listing.split(b"\0")):
        meta, _, name = record.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        if kind != "blob":  # a submodule: not part of a compiled repo
            continue
        path = name.decode("utf-8", errors="surrogateescape")
        rel = path if prefix == "." else path[len(prefix) + 1:] if path.startswith(prefix + "/") else None
        if not rel or any(p in ("", ".", "..") for p in rel.split("/")):
            continue
        entries.append((mode, oid, rel))
    if not entries:
        raise SystemExit(_usage(f"git:{rev}: {prefix} has no files at {commit[:12]}"))
    try:
        blobs = _git(top, "cat-file", "--batch", stdin="".join(f"{oid}\n" for _, oid, _ in entries).encode())
    except _GitError as e:
        raise SystemExit(_usage(f"git:{rev}: {e}")) from None
    dest.mkdir(parents=True)
    pos = 0
    for mode, _, rel in entries:
        header_end = blobs.index(b"\n", pos)
        _oid, _kind, size = blobs[pos:header_end].decode().split()
        start = header_end + 1
        data = blobs[start:start + int(size)]
        pos = start + int(size) + 1
        target = dest.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            os.symlink(os.fsdecode(data), target)
        else:
            target.write_bytes(data)
    return commit


def cmd_dag_files(args: argparse.Namespace) -> int:
    from chronon_airflow.render.shards import write_dag_files

    try:
        written = write_dag_files(args.folder, args.shards, replace=args.replace)
    except (FileExistsError, ValueError, OSError) as e:
        print(f"chronon-airflow dag-files: {e}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    repo, plan = _load(args)
    # The plan's errors: the loader's plus what only planning finds (a value that may not reach a
    # spark-submit command line), i.e. exactly the list the chronon.config_errors DAG shows.
    errors = plan.errors
    for e in errors:
        print(str(e))
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for warning in backend_warnings(repo):
        print(f"warning: {warning}", file=sys.stderr)
    bad = {e.path for e in errors}
    n_confs = sum(1 for c in repo.configs() if c.path not in bad)
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
    parser = _Parser(prog="chronon-airflow",
                     description="Airflow DAGs for Chronon CHIP-9 model transforms, from a compiled Chronon repo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("plan", help="print the DAGs generated from a compiled Chronon repo")
    _repo_arg(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON (a stable contract)")
    p.add_argument("--diff", nargs="+", metavar=("OLD", "NEW"), default=None,
                   help="show what changing repo OLD into NEW (default: --repo) does to the DAGs; each is a "
                        "repo folder or git:<rev> (--repo at that git revision). Exit 0 no change, 3 changes, "
                        "1 config errors in NEW")
    p.add_argument("--exit-zero", action="store_true", help="with --diff: exit 0 unless a usage error")
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("validate", help="check a compiled Chronon repo: one line per error, path: field: message")
    _repo_arg(p)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("dag-files", help="write the DAG files of N shards into a DAGs folder (README \"Scale\")")
    p.add_argument("folder", help="the DAGs folder (Airflow's [core] dags_folder)")
    p.add_argument("--shards", type=int, required=True, help="how many files (1: the single chronon_dags.py)")
    p.add_argument("--replace", action="store_true", help="remove other Chronon DAG files there (another shard count)")
    p.set_defaults(func=cmd_dag_files)
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
        if not _extra_installed(ep):
            continue
        try:
            modules.append(ep.load())
        except ImportError:  # a tool whose extra's dependencies are missing: its commands are absent
            continue
    return modules


def _extra_installed(ep) -> bool:
    """Every requirement of the extra named like the entry point (``backend``, ``engine``) is
    installed. The tool packages ship in the wheel either way and import their dependencies only
    when a command runs, so loading the entry point alone proves nothing."""
    import re
    from importlib.metadata import PackageNotFoundError, version

    marker = f'extra == "{ep.name}"'
    for req in (ep.dist.requires or []) if ep.dist is not None else []:
        if marker in req:
            try:
                version(re.split(r"[^A-Za-z0-9._-]", req, maxsplit=1)[0])  # the name before any specifier
            except PackageNotFoundError:
                return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
