"""A parse cache for the DAG file: the plan of the repo, keyed by every input's mtime.

Airflow re-parses ``dags/chronon_dags.py`` every 30 s and again at every task start. Loading and
planning thousands of compiled configs is the same work each time while nothing changed, so the
plan (which carries everything the render layer reads) is pickled under a key made of:

* the repo root and ``(path, size, mtime_ns)`` of ``teams.json`` and every file the loader reads
  under ``production/joins``, ``production/group_bys`` and ``production/staging_queries`` (the same
  walk as the loader);
* the deployment (:class:`chronon_airflow.deployment.Deployment`: every ``[chronon]`` setting and
  the Spark connection, which shapes the argv the plan shows);
* the chronon_airflow version and the ``(size, mtime_ns)`` of its own Python files, so an upgrade
  or a code change never reuses a plan built by other code; the Python version (pickle format);
* the versions of Airflow, its task SDK and the providers our operators use, and the Airflow
  settings a DAG reads at construction, since the rendered DAGs are cached too.

Any change gives a new key, i.e. a miss and a full load + plan, exactly as without the cache. Each
key's folder holds ``full.pickle`` (the plan, for a full parse), one small file per DAG (that DAG's
plan entry, for a task-start parse) and ``dags.pickle``: the rendered DAGs of a full parse.
Unpickling 20,000 operators is about four times faster than constructing them (Airflow's
``apply_defaults`` and attribute checks run per class level of every operator), and a full parse
happens every 30 s.

A task start (Airflow parses the file again in the task process, with the parsing context set to
one dag_id) needs one DAG. Checking the whole key costs one ``stat`` per compiled file (~10 ms at
3,000 files, a sixth of that parse), so it first checks only what that DAG is built from: the
environment part of the key (everything above but the repo's files) and the files recorded in the
DAG's entry — its own config, the parent join of a chained GroupBy, ``teams.json``. The entry is
found through ``latest-<environment hash>``, which names the key of the last full parse. If anything
it was built from changed (or the DAG is a team's metadata upload, which lists every join of the
team, or the config-errors DAG), the whole key is checked as before. What a task start does not see is a
change elsewhere that would drop its DAG, such as another file now claiming the same name: that
task runs with its own, unchanged definition, and the scheduler stops scheduling the DAG after the
next full parse.

The folder is ``[chronon] plan_cache_dir``, default ``$AIRFLOW_HOME/chronon_plan_cache``; ``off``
disables the cache. Pickles execute code when loaded, so a folder (or file) that is not owned by
this user or is writable by others is never read.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from chronon_airflow import settings

# Bump when the layout of the cached objects changes in a way the code fingerprint cannot see.
FORMAT = 2
KEEP_KEYS = 3  # fingerprint folders kept; older ones are removed when a new one is written
_PACKAGE = Path(__file__).resolve().parent.parent


def cache_dir() -> Path | None:
    value = settings.get("plan_cache_dir")
    if value.strip().lower() in ("off", "false", "0", "none"):
        return None
    if value:
        return Path(value).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / "chronon_plan_cache"


def _walk(folder: Path, root: Path, out: list, suffix: str = "", skip: tuple[str, ...] = (".",)) -> None:
    """Append ``(path relative to root, size, mtime_ns)`` of every file under ``folder`` whose name
    ends with ``suffix`` and none starts with ``skip``. By default the same order and filters as
    chronon_airflow.config.loader._files (no dot names; files, then sub-folders, by name).
    scandir and prefix slicing instead of os.walk + relpath: this runs at every parse, over
    thousands of files."""
    prefix = len(str(root)) + 1

    def visit(path: str) -> None:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        entries = [e for e in entries if not e.name.startswith(skip)]
        for e in entries:
            if not e.is_dir() and e.name.endswith(suffix):
                try:
                    st = os.stat(e.path)
                    out.append((e.path[prefix:], st.st_size, st.st_mtime_ns))
                except OSError:
                    out.append((e.path[prefix:], -1, -1))
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                visit(e.path)

    if folder.is_dir():
        visit(str(folder))


def _code_files() -> list:
    out: list = []
    _walk(_PACKAGE, _PACKAGE, out, suffix=".py", skip=(".", "__pycache__"))
    return out


class Snapshot:
    """The cache key of a repo and the stats it was computed from."""

    __slots__ = ("key", "env", "files")

    def __init__(self, key: str, env: str, files: dict[str, tuple[int, int]]) -> None:
        self.key = key
        self.env = env  # hash of everything in the key but the repo's files
        self.files = files  # path relative to the root -> (size, mtime_ns); (-1, -1) if unreadable


def _env_fingerprint(root: Path) -> str:
    """Everything in the key but the repo's files and the Spark connection: what a task start
    checks (the connection only changes the argv the plan displays, never the operators)."""
    from chronon_airflow import __version__

    items: list = [FORMAT, sys.version_info[:2], __version__, str(root), sorted(settings.snapshot().items()),
                   _code_files(), _airflow_fingerprint()]
    return hashlib.sha256(repr(items).encode()).hexdigest()[:32]


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


def snapshot(root: Path, deployment: Any = None) -> Snapshot:
    """The key of ``root``'s files under ``deployment`` (its fingerprint joins the key)."""
    root = Path(root).resolve()
    env = _env_fingerprint(root)
    items: list = [("teams.json", *_stat(str(root / "teams.json")))]
    for kind in ("joins", "group_bys", "staging_queries"):
        items.append("|")
        _walk(root / "production" / kind, root, items)
    deployed = deployment.fingerprint() if deployment is not None else None
    key = hashlib.sha256(repr([env, deployed, items]).encode()).hexdigest()[:32]
    return Snapshot(key, env, {i[0]: (i[1], i[2]) for i in items if i != "|"})


def _airflow_fingerprint() -> tuple:
    """What else shapes a rendered DAG: Airflow's and the providers' code, and the config values
    ``DAG()`` and the operators read at construction."""
    import airflow
    import airflow.providers.apache.spark
    import airflow.providers.smtp
    import airflow.providers.standard
    import airflow.sdk
    from airflow.configuration import conf

    # The packages' own __version__ (importlib.metadata would scan site-packages at every parse).
    versions = (airflow.__version__, airflow.sdk.__version__, airflow.providers.apache.spark.__version__,
                airflow.providers.smtp.__version__, airflow.providers.standard.__version__)
    values = tuple(conf.get(section, key, fallback=None) for section, key in (
        ("core", "max_active_tasks_per_dag"), ("core", "max_consecutive_failed_dag_runs_per_dag"),
        ("dag_processor", "disable_bundle_versioning"), ("core", "default_owner"),
        ("scheduler", "catchup_by_default"), ("sensors", "default_timeout"), ("email", "email_conn_id")))
    return versions, values


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


def load_full(snap: Snapshot) -> Any:
    """``(root, plan)`` cached under the snapshot's key, or ``None``."""
    base = cache_dir()
    if base is None:
        return None
    return _read(base / snap.key, "full.pickle")


def _pointer(base: Path, env: str) -> Path:
    return base / f"latest-{env}"


def _unchanged(root: Path, inputs: tuple) -> bool:
    return all(_stat(os.path.join(root, rel)) == (size, mtime) for rel, size, mtime in inputs)


def load_one_by_inputs(root: Path, dag_id: str) -> Any:
    """One DAG's entry ``(planned_dag, root, inputs)`` from the last full parse's key folder if
    none of the files it was built from changed (see the module docstring), else ``None``."""
    base = cache_dir()
    if base is None:
        return None
    root = Path(root).resolve()
    pointer = _pointer(base, _env_fingerprint(root))
    if not _safe(pointer):
        return None
    try:
        key = pointer.read_text().strip()
    except OSError:
        return None
    if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
        return None
    entry = _read(base / key, _dag_file(dag_id))
    if entry is not None and entry[-1] is not None and _unchanged(root, entry[-1]):
        return entry
    return None


def load_one(snap: Snapshot, dag_id: str) -> Any:
    """One DAG's entry ``(planned_dag, root, inputs)`` under the whole key, or ``None``."""
    base = cache_dir()
    if base is None:
        return None
    folder = base / snap.key
    if not _safe(folder / "full.pickle"):
        return None
    return _read(folder, _dag_file(dag_id))


def _inputs(snap: Snapshot, d: Any) -> tuple | None:
    """The files the DAG ``d`` is built from (the plan says which), with their stats in ``snap``;
    None: check the whole key (a team's metadata upload lists every join of the team, and the
    config-errors DAG depends on every file)."""
    from chronon_airflow.plan import model as pm

    if d.inputs is None or d.kind in (pm.METADATA_UPLOAD, pm.CONFIG_ERRORS):
        return None
    if any(p not in snap.files for p in d.inputs):
        return None
    return tuple((p, *snap.files[p]) for p in d.inputs)


def store(snap: Snapshot, repo: Any, plan: Any) -> None:
    """Write the snapshot key's folder (best effort: a read-only or full disk only costs the speed-up)."""
    base = cache_dir()
    if base is None:
        return
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _safe(base):
            return
        key = snap.key
        folder = base / key
        if (folder / "full.pickle").exists():
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=base))
        for d in plan.dags:
            entry = (d, repo.root, _inputs(snap, d))
            (tmp / _dag_file(d.dag_id)).write_bytes(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
        # Written last: its presence says the per-DAG files are complete. The plan is all render()
        # reads; the loaded configs (every GroupBy embeds its parent join) are not kept.
        (tmp / "full.pickle").write_bytes(pickle.dumps((repo.root, plan), protocol=pickle.HIGHEST_PROTOCOL))
        try:
            os.rename(tmp, folder)
        except OSError:  # another parser stored the same key first
            shutil.rmtree(tmp, ignore_errors=True)
        point_to(snap)
        _prune(base)
    except OSError:
        return


def point_to(snap: Snapshot) -> None:
    """Make ``snap``'s key the one task starts of its environment look in first (called by every
    full parse: inputs changed back to an earlier, still cached state hit that folder without a
    store). Best effort; written only when it changes."""
    base = cache_dir()
    if base is None or not _safe(base / snap.key):
        return
    pointer = _pointer(base, snap.env)
    try:
        if pointer.read_text() == snap.key:
            return
    except OSError:
        pass
    try:
        fd, tmp = tempfile.mkstemp(prefix=".latest.", dir=base)
        with os.fdopen(fd, "w") as f:
            f.write(snap.key)
        os.replace(tmp, pointer)
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
    for pointer in base.glob("latest-*"):
        try:
            if not (base / pointer.read_text().strip()).is_dir():
                pointer.unlink()
        except (OSError, ValueError):
            pass
