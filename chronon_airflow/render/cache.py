"""A parse cache for the DAG file: the loaded repo and its plan, keyed by every input's mtime.

Airflow re-parses ``dags/chronon_dags.py`` every 30 s and again at every task start. Loading and
planning thousands of compiled configs is the same work each time while nothing changed, so the
result is pickled under a key made of:

* the repo root and ``(path, size, mtime_ns)`` of ``teams.json`` and every file the loader reads
  under ``production/joins`` and ``production/group_bys`` (the same walk as the loader);
* every ``[chronon]`` setting and ``AIRFLOW_CONN_<spark_conn_id>`` (they shape the Spark argv);
* the chronon_airflow version and the ``(size, mtime_ns)`` of its own Python files, so an upgrade
  or a code change never reuses a plan built by other code; the Python version (pickle format).

* the versions of Airflow, its task SDK and the providers our operators subclass, and the Airflow
  settings a DAG reads at construction, since the rendered DAGs are cached too.

Any change gives a new key, i.e. a miss and a full load + plan, exactly as without the cache. Each
key's folder holds ``full.pickle`` (the plan and the part of the repo render() reads, for a full
parse), one small file per DAG (that DAG's plan entry and the one join it renders from, for a
task-start parse) and ``dags.pickle``: the rendered DAGs of a full parse. Unpickling 20,000
operators is about four times faster than constructing them (Airflow's ``apply_defaults`` and
attribute checks run per class level of every operator), and a full parse happens every 30 s.

The folder is ``[chronon] plan_cache_dir``, default ``$AIRFLOW_HOME/chronon_plan_cache``; ``off``
disables the cache. Pickles execute code when loaded, so a folder (or file) that is not owned by
this user or is writable by others is never read.
"""
from __future__ import annotations

import copyreg
import hashlib
import os
import pickle
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chronon_airflow import settings

# Bump when the layout of the cached objects changes in a way the code fingerprint cannot see.
FORMAT = 1
KEEP_KEYS = 3  # fingerprint folders kept; older ones are removed when a new one is written
_PACKAGE = Path(__file__).resolve().parent.parent


def _mappingproxy(d: dict) -> MappingProxyType:
    return MappingProxyType(d)


def _reduce_mappingproxy(m: MappingProxyType) -> tuple:
    # By a module function: the type itself has no importable name (builtins.mappingproxy).
    return _mappingproxy, (dict(m),)


# The loaded configs are frozen with MappingProxyType, which pickle cannot handle by itself.
copyreg.pickle(MappingProxyType, _reduce_mappingproxy)


def cache_dir() -> Path | None:
    value = settings.get("plan_cache_dir")
    if value.strip().lower() in ("off", "false", "0", "none"):
        return None
    if value:
        return Path(value).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / "chronon_plan_cache"


def _walk(folder: Path, root: Path, out: list) -> None:
    # Same order and filters as chronon_airflow.config.loader._files. scandir and prefix slicing
    # instead of os.walk + relpath: this runs at every task start over thousands of files.
    prefix = len(str(root)) + 1

    def visit(path: str) -> None:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        files = [e for e in entries if not e.name.startswith(".") and not e.is_dir()]
        dirs = [e for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        for e in files:
            try:
                st = os.stat(e.path)
                out.append((e.path[prefix:], st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((e.path[prefix:], -1, -1))
        for d in dirs:
            visit(d.path)

    if folder.is_dir():
        visit(str(folder))


def _code_files() -> list:
    out: list = []
    for dirpath, dirnames, filenames in os.walk(_PACKAGE):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        for f in sorted(filenames):
            if f.endswith(".py"):
                st = os.stat(os.path.join(dirpath, f))
                out.append((os.path.relpath(os.path.join(dirpath, f), _PACKAGE), st.st_size, st.st_mtime_ns))
    return out


def fingerprint(root: Path) -> str:
    from chronon_airflow import __version__

    root = Path(root).resolve()
    items: list = [FORMAT, sys.version_info[:2], __version__, str(root)]
    teams = root / "teams.json"
    try:
        st = teams.stat()
        items.append(("teams.json", st.st_size, st.st_mtime_ns))
    except OSError:
        items.append(("teams.json", -1, -1))
    _walk(root / "production" / "joins", root, items)
    items.append("|")
    _walk(root / "production" / "group_bys", root, items)
    items.append(sorted((k, settings.get(k)) for k in settings.DEFAULTS))
    conn_id = settings.get("spark_conn_id")
    items.append(os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"))
    items.append(_code_files())
    items.append(_airflow_fingerprint())
    return hashlib.sha256(repr(items).encode()).hexdigest()[:32]


def _airflow_fingerprint() -> tuple:
    """What else shapes a rendered DAG: Airflow's and the providers' code, and the config values
    ``DAG()`` and the operators read at construction."""
    from importlib import metadata

    versions = []
    for dist in ("apache-airflow-core", "apache-airflow-task-sdk", "apache-airflow-providers-apache-spark",
                 "apache-airflow-providers-smtp", "apache-airflow-providers-standard"):
        try:
            versions.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            versions.append((dist, None))
    from airflow.configuration import conf

    values = tuple(conf.get(section, key, fallback=None) for section, key in (
        ("core", "max_active_tasks_per_dag"), ("core", "max_consecutive_failed_dag_runs_per_dag"),
        ("dag_processor", "disable_bundle_versioning"), ("core", "default_owner"),
        ("scheduler", "catchup_by_default"), ("sensors", "default_timeout"), ("email", "email_conn_id")))
    return tuple(versions), values


def _safe(path: Path) -> bool:
    """Owned by us and writable by nobody else: only then is a pickle in it trusted."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _dag_file(dag_id: str) -> str:
    return "dag-" + hashlib.sha256(dag_id.encode()).hexdigest()[:32] + ".pickle"


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    if not (_safe(folder.parent) and _safe(folder) and _safe(path)):
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # a torn or stale file is just a miss
        return None


def load_full(root: Path) -> tuple[str, Any]:
    """``(key, (repo, plan) or None)``."""
    base = cache_dir()
    key = fingerprint(root)
    if base is None:
        return key, None
    return key, _read(base / key, "full.pickle")


def load_one(root: Path, dag_id: str) -> tuple[str, Any]:
    """``(key, entry or None)``; entry is ``None`` on a miss, ``False`` when the cached plan has no
    such DAG, else ``(planned_dag, errors, root, teams, teams_json, join_or_None)``."""
    base = cache_dir()
    key = fingerprint(root)
    if base is None:
        return key, None
    folder = base / key
    if not _safe(folder / "full.pickle"):
        return key, None
    entry = _read(folder, _dag_file(dag_id))
    return key, (entry if entry is not None else False)


def store(key: str, repo: Any, plan: Any) -> None:
    """Write ``key``'s folder (best effort: a read-only or full disk only costs the speed-up)."""
    base = cache_dir()
    if base is None:
        return
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _safe(base):
            return
        folder = base / key
        if (folder / "full.pickle").exists():
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=base))
        for d in plan.dags:
            join = repo.joins.get(d.conf_name) if d.kind == "join_backfill" else None
            entry = (d, plan.errors, repo.root, repo.teams, repo.teams_json, join)
            (tmp / _dag_file(d.dag_id)).write_bytes(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
        # Written last: its presence says the per-DAG files are complete. The repo keeps only what
        # render() reads (root, teams, the joins of join_backfill DAGs): unpickling every GroupBy,
        # each embedding its parent join, cost as much as parsing them.
        from chronon_airflow.config.model import Repo

        used = {d.conf_name for d in plan.dags if d.kind == "join_backfill"}
        slim = Repo(root=repo.root, teams=repo.teams, teams_json=repo.teams_json,
                    joins={n: j for n, j in repo.joins.items() if n in used}, group_bys={}, errors=repo.errors)
        (tmp / "full.pickle").write_bytes(pickle.dumps((slim, plan), protocol=pickle.HIGHEST_PROTOCOL))
        try:
            os.rename(tmp, folder)
        except OSError:  # another parser stored the same key first
            shutil.rmtree(tmp, ignore_errors=True)
        _prune(base)
    except OSError:
        return


def load_dags(key: str) -> dict | None:
    """The rendered DAGs of a full parse under ``key``, or ``None``."""
    base = cache_dir()
    if base is None:
        return None
    dags = _read(base / key, "dags.pickle")
    return dags if isinstance(dags, dict) else None


def store_dags(key: str, dags: dict) -> None:
    """Add the rendered DAGs to ``key``'s folder (best effort, written atomically)."""
    base = cache_dir()
    if base is None:
        return
    folder = base / key
    if not (_safe(base) and _safe(folder)) or (folder / "dags.pickle").exists():
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dags.", dir=folder)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(dags, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / "dags.pickle")
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        # An unpicklable DAG only costs the speed-up.
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass


def _prune(base: Path) -> None:
    folders = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in folders[KEEP_KEYS:]:
        shutil.rmtree(old, ignore_errors=True)
