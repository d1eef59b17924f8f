"""The parse cache of the DAG files: per compiled file, per planned DAG, per rendered DAG.

Airflow parses every DAG file every 30 s and again at every task start. While nothing changed,
loading, planning and rendering thousands of configs is the same work each time; after a change
to a few files, only what was built from them needs redoing. Everything lives under
``[chronon] plan_cache_dir`` (default ``$AIRFLOW_HOME/chronon_plan_cache``; ``off`` disables it),
in one folder per *environment*: the hash of this cache's format, the Python version,
chronon_airflow's version and the ``(size, mtime_ns)`` of its own Python files, the repo root and
every ``[chronon]`` setting. DAG file shard ``i`` of ``N`` (:mod:`chronon_airflow.render.shards`;
the single ``chronon_dags.py`` is shard 0 of 1) keeps there:

* ``files/<i>-of-<N>-<team>.pickle``: per team folder, every compiled file the shard read, with
  the *stamp* it had then and what the loader made of it (the config, or its error). A re-plan
  parses only the files whose stamp changed (``chronon_airflow.config.load_repo(parsed=...)``); the
  checks across files run again. Only the chunks of changed team folders are rewritten.
* ``plans/<hash>.pickle``: each planned DAG, named by the hash of its content (pickled without
  identity sharing, so equal plans give equal hashes in any process).
* ``<i>-of-<N>.index``: the shard's DAG ids with their plan hash and the stamps of the files each
  DAG is built from (its ``inputs``): what a task start reads.
* ``dags/<i>-of-<N>-<hash>.pickle``: the rendered DAGs of one team (one chunk per team), named by
  the hash of the render fingerprint and of the team's (dag_id, plan hash) list;
  ``<i>-of-<N>.state`` lists the chunks of the last full parse and the key it was made under.

A stamp is ``(size, mtime_ns)``, or with ``[chronon] plan_cache_stamp = content`` ``(size, sha1
of the bytes)`` for deploys that rewrite every file's mtime (a checkout, an image build, rsync
without ``-t``). A missing file stamps as ``(-1, -1)``.

**Full parse.** The key is the hash of the *render fingerprint* — the environment, the
deployment (:meth:`chronon_airflow.deployment.Deployment.fingerprint`, the ``[chronon]``
settings: the Spark connection is not looked up, it only changes the argv a plan shows), the
versions of Airflow and of the providers our operators use, and the effective values of every
Airflow config section that ``DAG()`` and the operators read at construction
(:data:`AIRFLOW_SECTIONS`: Airflow's defaults come with its version, then ``airflow.cfg``, then
``AIRFLOW__<SECTION>__*``; secrets and ``_cmd``/``_secret`` options left out) — and of the stamps
of the shard's own files and closure. The same key as the state's: unpickle the chunks (unpickling
20,000 operators is about four times cheaper than constructing them). Another key: load (through
``files/``), plan the shard, hash each planned DAG whose input files changed (a DAG whose inputs
all kept their stamps keeps its hash: the plan says no other file can change it), and build each
team's chunk: an existing chunk file with the same name is read as is; otherwise each DAG whose
hash is unchanged comes from the team's previous chunk and only the others are rendered. One
edited join re-renders that join's DAG, and the DAGs of its chained GroupBys and of its team's
metadata upload only if their plan changed.

**Task start** (the parsing context names one DAG). The index entry of that DAG, if none of its
input files' stamps changed (for a DAG whose ``inputs`` is ``None`` — a team's metadata upload,
which lists all of the team's joins, or the config-errors DAG — the stamps of all the shard's
files and closure are compared), then its plan entry: no load, no plan, one DAG rendered. What a
task start does not see is a change elsewhere that would remove its DAG: it runs with its own,
unchanged definition, and the scheduler stops scheduling the DAG after the next full parse.

**Best effort.** Any failure to read or write the cache (a torn or foreign file, a full or
read-only disk, a format this code does not know, an unpicklable object) is a miss or a skipped
write: the DAG file builds as without the cache and never fails because of it. Pickles execute code
when loaded, so a folder or file not owned by this user, or writable by others, is never read.
"""
from __future__ import annotations

import configparser
import hashlib
import io
import os
import pickle
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, MutableMapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chronon_airflow import settings

# Bump when the layout of the cached objects changes in a way the code fingerprint cannot see.
FORMAT = 3
KEEP_ENVS = 3  # environment folders kept; older ones are removed when a new one is written
KEEP_BUNDLES = 3  # rendered states kept per shard (a change undone finds its old chunks)
MISSING = (-1, -1)
WRITER_SECONDS = 120  # a background writer still running after this is killed (SIGALRM)
# How long a parse waits for the writer of the previous one (the largest shard's takes ~2 s): well
# under [dag_processor] dag_file_processor_timeout (50 s), so a stuck writer only costs a parse the
# cache, never its DAGs.
WRITER_WAIT = 5.0
_PACKAGE = Path(__file__).resolve().parent.parent
# The Airflow config sections DAG() and the operators (SDK, Spark, smtp, standard providers) read
# when a DAG file is parsed; their effective values are part of the render fingerprint.
AIRFLOW_SECTIONS = ("core", "operators", "scheduler", "dag_processor", "sensors", "email", "smtp",
                    "openlineage", "lineage")


def cache_dir() -> Path | None:
    value = settings.get("plan_cache_dir")
    if value.strip().lower() in ("off", "false", "0", "none"):
        return None
    if value:
        return Path(value).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home) / "chronon_plan_cache"


def content_stamps() -> bool:
    return settings.get("plan_cache_stamp").strip().lower() == "content"


def stamp(path: str | os.PathLike, content: bool = False) -> tuple:
    """``(size, mtime_ns)``, or ``(size, sha1)`` of the bytes; ``(-1, -1)`` if unreadable."""
    try:
        if not content:
            st = os.stat(path)
            return st.st_size, st.st_mtime_ns
        with open(path, "rb") as f:
            data = f.read()
        return len(data), hashlib.sha1(data).hexdigest()
    except OSError:
        return MISSING


def _hash(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:32]


# -- fingerprints -----------------------------------------------------------------------------------


def _code_files() -> list:
    out: list = []

    def visit(path: str) -> None:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if e.name.startswith((".", "__pycache__")):
                continue
            if e.is_dir(follow_symlinks=False):
                visit(e.path)
            elif e.name.endswith(".py"):
                out.append((e.path, *stamp(e.path)))

    visit(str(_PACKAGE))
    return out


def env_fingerprint(root: Path) -> str:
    """The environment folder's name: what a plan depends on besides the repo's files (a task
    start computes it too, so it holds nothing that needs Airflow's config or a connection)."""
    from chronon_airflow import __version__

    return _hash([FORMAT, sys.version_info[:2], __version__, str(root), sorted(settings.snapshot().items()),
                  _code_files()])


def _sensitive() -> set:
    try:
        from airflow.configuration import conf

        return {(s.lower(), k.lower()) for s, k in conf.sensitive_config_values}
    except Exception:
        return set()


def airflow_fingerprint() -> str:
    """The versions of Airflow, its task SDK and the providers our operators use, and the effective
    values of :data:`AIRFLOW_SECTIONS` (options ending in ``_cmd``/``_secret`` and sensitive ones
    left out: they configure secrets, never a DAG, and a command must not run at every parse)."""
    import airflow
    import airflow.providers.apache.spark
    import airflow.providers.smtp
    import airflow.providers.standard
    import airflow.sdk

    # The packages' own __version__ (importlib.metadata would scan site-packages at every parse).
    versions = (airflow.__version__, airflow.sdk.__version__, airflow.providers.apache.spark.__version__,
                airflow.providers.smtp.__version__, airflow.providers.standard.__version__)
    skip = _sensitive()
    values: dict[tuple[str, str], str] = {}
    path = settings.config_file()  # $AIRFLOW_CONFIG, else $AIRFLOW_HOME/airflow.cfg, as Airflow finds it
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as e:
        values[("", "airflow.cfg")] = f"unreadable: {type(e).__name__}"
    for section in AIRFLOW_SECTIONS:
        if parser.has_section(section):
            for key, value in parser.items(section, raw=True):
                values[(section, key.lower())] = value
    prefixes = {f"AIRFLOW__{s.upper()}__": s for s in AIRFLOW_SECTIONS}
    for name, value in os.environ.items():
        if name.startswith("AIRFLOW__"):
            head, _, key = name[len("AIRFLOW__"):].partition("__")
            env_section = prefixes.get(f"AIRFLOW__{head}__")
            if env_section and key:
                values[(env_section, key.lower())] = value  # the environment wins, as in Airflow
    picked = sorted((k, v) for k, v in values.items()
                    if k not in skip and not k[1].endswith(("_cmd", "_secret")))
    return _hash([versions, picked])


# -- pickles ----------------------------------------------------------------------------------------


def _mappingproxy(d: dict) -> MappingProxyType:
    return MappingProxyType(d)


def _reduce_mappingproxy(m: MappingProxyType) -> tuple:
    # The loaded configs are frozen views (MappingProxyType), which pickle cannot name.
    return _mappingproxy, (dict(m),)


def dumps(obj: Any, fast: bool = False) -> bytes:
    """Pickle ``obj`` (frozen mappings included: this pickler's own dispatch table, nothing is
    registered process-wide). ``fast``: without the memo, so the bytes depend only on the values,
    never on which equal objects happen to be shared (content hashes)."""
    import copyreg

    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_mappingproxy}
    p.fast = fast
    p.dump(obj)
    return buf.getvalue()


def _safe(path: Path) -> bool:
    """Owned by us and writable by nobody else: only then is a pickle in it trusted."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _read(path: Path, *folders: Path) -> Any:
    """The unpickled file, or ``None`` (missing, torn, foreign, unsafe)."""
    if not all(_safe(p) for p in (*folders, path)):
        return None
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # a torn or stale file is just a miss
        return None


def _write(path: Path, data: bytes) -> bool:
    """Write atomically (a reader sees the old file or the whole new one); False on failure."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return True
    except Exception:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def _mkdir(path: Path) -> bool:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return False
    return _safe(path)


# -- the per-file cache -----------------------------------------------------------------------------


def _group(rel: str) -> str:
    """The chunk a repo file's cache entry is kept in: its team folder (``production/<kind>/<team>/``)."""
    parts = rel.split("/")
    return parts[2] if len(parts) > 3 and parts[0] == "production" else ""


class FileResults(MutableMapping):
    """The loader's per-file cache (``load_repo(parsed=...)``): an entry is returned only while its
    file has the stamp it had when it was parsed. ``stamps`` holds the current stamps (taken before
    the files are read); entries for files without a current stamp are stamped when stored."""

    def __init__(self, previous: dict | None, stamps: dict[str, tuple], root: Path, content: bool):
        self.previous = previous if isinstance(previous, dict) else {}
        self.stamps = stamps
        self.current: dict[str, tuple] = {}
        self.root = root
        self.content = content
        self.parsed = 0  # files parsed this time (the rest came from the cache)

    def __getitem__(self, rel: str) -> Any:
        hit = self.current.get(rel)
        if hit is not None:
            return hit[1]
        old = self.previous.get(rel)
        st = self.stamps.get(rel)
        if old is not None and st is not None and st != MISSING and old[0] == st:
            self.current[rel] = old
            return old[1]
        raise KeyError(rel)

    def __setitem__(self, rel: str, result: Any) -> None:
        st = self.stamps.get(rel)
        if st is None:
            st = self.stamps[rel] = stamp(self.root / rel, self.content)
        self.current[rel] = (st, result)
        self.parsed += 1

    def __delitem__(self, rel: str) -> None:
        del self.current[rel]

    def __iter__(self):
        return iter(self.current)

    def __len__(self) -> int:
        return len(self.current)


# -- one shard's cache ------------------------------------------------------------------------------


class ShardCache:
    """The cache of DAG file shard ``shard`` of ``shards`` for the repo at ``root``. Every method
    is best effort: it returns ``None`` (a miss) or does nothing when the cache cannot be used.

    Files of an environment folder: ``<shard>.state`` (the last full parse: its key and the
    rendered chunks), ``<shard>.index`` (every DAG's plan hash and input stamps), ``files/<shard>-
    <team>.pickle`` (the loader's results per team folder), ``plans/<hash>.pickle`` (planned DAGs)
    and ``dags/<shard>-<hash>.pickle`` (rendered DAGs, one chunk per team: an edit rewrites the
    chunks of the teams whose DAGs changed, a parse reads them all)."""

    def __init__(self, root: Path, shard: int, shards: int):
        from chronon_airflow.render.shards import own_files

        self.root = Path(root)
        self.shard, self.shards = shard, shards
        self.name = f"{shard}-of-{shards}"
        self.content = content_stamps()
        self._own_files = own_files
        self._own: dict[str, tuple] | None = None
        self.base = cache_dir()
        self.folder: Path | None = None
        if self.base is not None:
            try:
                self.folder = self.base / env_fingerprint(self.root)
            except Exception:
                self.base = None
        self.previous_state: dict | None = None
        self.previous_index: dict | None = None
        self._writes: list[Callable[[], Any]] = []  # queued by this parse, done by flush()

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    @property
    def _dir(self) -> Path:
        """The environment's cache folder: only used when :attr:`enabled`."""
        assert self.folder is not None
        return self.folder

    @property
    def _base(self) -> Path:
        """The cache root: set whenever :attr:`enabled` is."""
        assert self.base is not None
        return self.base

    def stamp(self, rel: str) -> tuple:
        return stamp(self.root / rel, self.content)

    def own(self) -> dict[str, tuple]:
        """Stamps of ``teams.json`` and the shard's own production files (walked once per parse)."""
        if self._own is None:
            self._own = {rel: self.stamp(rel) for rel in self._own_files(self.root, self.shard, self.shards)}
        return self._own

    def _files_hash(self, closure: Iterable[str], stamps: dict[str, tuple] | None = None) -> str:
        """The hash of the stamps of the shard's own files and closure (``stamps``: as recorded
        by a plan; default: as they are now)."""
        own = self.own()
        if stamps is None:
            return _hash([sorted(own.items()), [(rel, self.stamp(rel)) for rel in closure]])
        return _hash([sorted((rel, stamps.get(rel, MISSING)) for rel in own),
                      [(rel, stamps.get(rel, MISSING)) for rel in closure]])

    def _path(self, suffix: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{self.name}.{suffix}"

    def _read(self, path: Path) -> Any:
        assert self.base is not None and self.folder is not None
        folders = [self.base, self.folder]
        if path.parent != self.folder:
            folders.append(path.parent)
        return _read(path, *folders)

    def _read_index(self) -> dict | None:
        if self.previous_index is None:
            index = self._read(self._path("index"))
            self.previous_index = index if isinstance(index, dict) and index.get("format") == FORMAT else {}
        return self.previous_index or None

    # -- task start --

    def task_entry(self, dag_id: str) -> tuple | None:
        """``(planned_dag, root)`` of ``dag_id`` from the last plan of this shard, if nothing it is
        built from changed since."""
        if not self.enabled:
            return None
        try:
            index = self._read_index()
            if not index:
                return None
            entry = index["dags"].get(dag_id)
            if entry is None:
                return None
            digest, inputs = entry
            if inputs is None:
                if self._files_hash(index["closure"]) != index["files"]:
                    return None
            elif any(self.stamp(rel) != st for rel, st in inputs):
                return None
            planned = self._read(self._dir / "plans" / f"{digest}.pickle")
            return (planned, index["root"]) if planned is not None and getattr(planned, "dag_id", None) == dag_id \
                else None
        except Exception:
            return None

    # -- full parse --

    def render_fingerprint(self, deployment: Any) -> str | None:
        """What a rendered DAG depends on besides its plan: the environment, the deployment, the
        Airflow and provider versions and settings (``None``: it cannot be computed, no caching)."""
        try:
            return _hash([self.folder.name if self.folder else None, deployment.fingerprint(),
                          airflow_fingerprint()])
        except Exception:
            return None

    def load_dags(self, render_fp: str | None) -> dict | None:
        """The rendered DAGs of the last full parse, if nothing changed since; else ``None`` (the
        state is kept: a re-plan takes unchanged DAGs from it)."""
        if not self.enabled or render_fp is None:
            return None
        try:
            state = self._read(self._path("state"))
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                return None
            self.previous_state = state
            if state["render"] != render_fp or _hash([render_fp, self._files_hash(state["closure"])]) != state["key"]:
                return None
            dags: dict = {}
            for name in state["chunks"].values():
                chunk = self._read(self._dir / "dags" / name)
                if not isinstance(chunk, dict):
                    return None
                dags.update((dag_id, dag) for dag_id, (_digest, dag) in chunk.items())
            return dags
        except Exception:
            return None

    def parsed(self) -> FileResults:
        """The loader's per-file cache for this shard (empty when nothing usable is cached)."""
        previous: dict = {}
        if self.enabled:
            try:
                for path in (self._dir / "files").glob(f"{self.name}-*.pickle"):
                    chunk = self._read(path)
                    if (isinstance(chunk, dict) and chunk.get("format") == FORMAT
                            and isinstance(chunk.get("files"), dict)):
                        previous.update((rel, entry) for rel, entry in chunk["files"].items()
                                        if isinstance(entry, tuple) and len(entry) == 2)
            except Exception:
                previous = {}
        return FileResults(previous, dict(self.own()), self.root, self.content)

    def hashes(self, plan: Any) -> dict[str, tuple[str | None, bytes | None]]:
        """``dag_id -> (hash, pickled planned DAG or None)``. A DAG whose input files all have the
        stamps they had at the last plan keeps its hash unpickled: the plan says a change to any
        other file cannot change it. The others (and metadata uploads and the config-errors DAG,
        which have no such list) are hashed."""
        out: dict[str, tuple[str | None, bytes | None]] = {}
        try:
            index = self._read_index() if self.enabled else None
            old = index["dags"] if index and index.get("root") == plan.root and isinstance(index["dags"], dict) else {}
        except Exception:
            old = {}
        for d in plan.dags:
            prev = old.get(d.dag_id)
            inputs = self._inputs(plan, d)
            if isinstance(prev, tuple) and len(prev) == 2 and isinstance(prev[0], str) and inputs is not None \
                    and prev[1] == inputs:
                out[d.dag_id] = (prev[0], None)
                continue
            try:
                data = dumps(d, fast=True)
                out[d.dag_id] = (hashlib.sha256(data).hexdigest()[:32], data)
            except Exception:
                out[d.dag_id] = (None, None)
        return out

    def store_plan(self, plan: Any, hashes: dict, parsed: FileResults) -> None:
        """Queue the writes of the shard's new plan entries, its index and the changed per-file
        chunks (best effort; :meth:`flush` does them)."""
        write = self._plan_write(plan, hashes, parsed)
        if write is not None:
            self._writes.append(write)

    def _plan_write(self, plan: Any, hashes: dict, parsed: FileResults) -> Callable[[], None] | None:
        if not self.enabled:
            return None
        try:
            if not all(_mkdir(p) for p in (self._base, self._dir, self._dir / "plans", self._dir / "files")):
                return None
            plans = [(self._dir / "plans" / f"{digest}.pickle", data) for d in plan.dags
                     for digest, data in [hashes.get(d.dag_id, (None, None))]
                     if digest is not None and data is not None]
            index = {"format": FORMAT, "root": plan.root, "closure": plan.closure,
                     "files": self._files_hash(plan.closure, plan.stamps),
                     "dags": {d.dag_id: (hashes[d.dag_id][0], self._inputs(plan, d))
                              for d in plan.dags if hashes.get(d.dag_id, (None,))[0] is not None}}
            self.previous_index = index
        except Exception:
            return None

        def write() -> None:
            _touch(self._dir)
            for path, data in plans:
                if not path.exists():
                    _write(path, data)
            _write(self._path("index"), dumps(index))
            self._store_files(parsed)
            self._prune_plans(index)
            _prune_envs(self._base, self._dir)

        return write

    def _store_files(self, parsed: FileResults) -> None:
        """One pickle per team folder, rewritten only when one of its entries changed."""
        new: dict[str, dict] = {}
        for rel, entry in parsed.current.items():
            new.setdefault(_group(rel), {})[rel] = entry
        old: dict[str, dict] = {}
        for rel, entry in parsed.previous.items():
            old.setdefault(_group(rel), {})[rel] = entry
        folder = self._dir / "files"
        for group in set(new) | set(old):
            path = folder / f"{self.name}-{_hash(group)[:16]}.pickle"
            entries = new.get(group)
            if not entries:
                try:
                    path.unlink()
                except OSError:
                    pass
            elif {r: e[0] for r, e in entries.items()} != {r: e[0] for r, e in old.get(group, {}).items()}:
                _write(path, dumps({"format": FORMAT, "files": entries}))

    @staticmethod
    def _inputs(plan: Any, d: Any) -> tuple | None:
        """The files the DAG ``d`` is built from with their stamps; ``None``: check them all."""
        from chronon_airflow.plan import model as pm

        if d.inputs is None or d.kind in (pm.METADATA_UPLOAD, pm.CONFIG_ERRORS):
            return None
        if any(p not in plan.stamps for p in d.inputs):
            return None
        return tuple((p, plan.stamps[p]) for p in d.inputs)

    def has_history(self) -> bool:
        """Whether an earlier parse of this shard left an index or a state to compare with."""
        return self.enabled and bool(self._read_index() or self.previous_state)

    @staticmethod
    def _groups(plan: Any) -> dict[str, list]:
        """The shard's planned DAGs by chunk: one per team (the config-errors DAG on its own)."""
        groups: dict[str, list] = {}
        for d in plan.dags:
            groups.setdefault(d.team if d.kind != "config_errors" else "", []).append(d)
        return groups

    def _chunk_name(self, render_fp: str | None, content: list) -> str:
        return f"{self.name}-{_hash([render_fp, content])}.pickle"

    def render_new(self, plan: Any, parsed: FileResults, render_fp: str | None, render: Any) -> dict:
        """Every DAG of a shard with no history here (an empty cache, a new environment), all
        ``render``-ed. Nothing cached can be reused, so hashing the plans, naming the chunks and
        writing plans, chunks and state are one queued write (:meth:`flush`)."""
        groups = self._groups(plan)
        rendered = {team: render(members) for team, members in groups.items()}
        if self.enabled and render_fp is not None:
            def write() -> None:
                hashes = self.hashes(plan)
                plan_write = self._plan_write(plan, hashes, parsed)
                if plan_write is not None:
                    plan_write()
                if not all(h[0] is not None for h in hashes.values()) or not _mkdir(self._dir / "dags"):
                    return
                chunks: dict[str, str] = {}
                for team, members in groups.items():
                    content = [(d.dag_id, hashes[d.dag_id][0]) for d in members]
                    chunks[team] = self._chunk_name(render_fp, content)
                    chunk = {dag_id: (digest, rendered[team][dag_id]) for dag_id, digest in content}
                    _write(self._dir / "dags" / chunks[team], dumps(chunk))
                self._write_state(plan, render_fp, chunks)

            self._writes.append(write)
        return {dag_id: dag for fresh in rendered.values() for dag_id, dag in fresh.items()}

    def render(self, plan: Any, hashes: dict, render_fp: str | None, render: Any) -> dict:
        """Every DAG of the shard, in chunks of one team: a chunk whose DAGs all have the hashes of
        an existing chunk file is read from it; in the others each DAG whose hash is unchanged since
        the last full parse comes from that parse's chunk and only the rest are ``render``-ed."""
        groups = self._groups(plan)
        usable = self.enabled and render_fp is not None and bool(hashes) \
            and all(h[0] is not None for h in hashes.values())
        try:
            usable = usable and all(_mkdir(p) for p in (self._base, self._dir, self._dir / "dags"))
            state = self.previous_state
            previous = state["chunks"] if usable and isinstance(state, dict) and state.get("render") == render_fp \
                and isinstance(state.get("chunks"), dict) else {}
        except Exception:
            usable, previous = False, {}
        chunks: dict[str, str] = {}
        dags: dict = {}
        for team, members in groups.items():
            content = [(d.dag_id, hashes.get(d.dag_id, (None,))[0]) for d in members]
            name = self._chunk_name(render_fp, content)
            chunk = None
            if usable:
                try:
                    chunk = self._chunk(name, previous.get(team), members, content, render)
                except Exception:
                    usable = False  # anything odd in the cache: this parse renders without it
            if chunk is None:
                fresh = render(members)
                chunk = {dag_id: (digest, fresh[dag_id]) for dag_id, digest in content}
            chunks[team] = name
            dags.update((dag_id, dag) for dag_id, (_digest, dag) in chunk.items())
        if usable and render_fp is not None:  # usable: render_fp is set
            self._store_state(plan, render_fp, chunks)
        return dags

    def _chunk(self, name: str, previous: str | None, members: list, content: list, render: Any) -> dict | None:
        """One team's chunk ``name``: read, or made from the previous chunk of that team and
        ``render``, its write queued (:meth:`flush`)."""
        path = self._dir / "dags" / name
        chunk = self._read(path)
        if isinstance(chunk, dict) and list(chunk) == [c[0] for c in content] \
                and all(isinstance(v, tuple) and len(v) == 2 for v in chunk.values()):
            try:
                os.utime(path)  # in use again: the newest for pruning
            except OSError:
                pass
            return chunk
        old = self._read(self._dir / "dags" / previous) if isinstance(previous, str) else None
        old = old if isinstance(old, dict) else {}
        reuse = {dag_id: entry[1] for dag_id, digest in content
                 if isinstance(entry := old.get(dag_id), tuple) and len(entry) == 2 and entry[0] == digest}
        todo = [d for d in members if d.dag_id not in reuse]
        fresh = render(todo) if todo else {}
        chunk = {dag_id: (digest, reuse[dag_id] if dag_id in reuse else fresh[dag_id]) for dag_id, digest in content}
        self._writes.append(lambda: _write(path, dumps(chunk)))
        return chunk

    def _store_state(self, plan: Any, render_fp: str, chunks: dict[str, str]) -> None:
        self._writes.append(lambda: self._write_state(plan, render_fp, chunks))

    def _write_state(self, plan: Any, render_fp: str, chunks: dict[str, str]) -> None:
        try:
            key = _hash([render_fp, self._files_hash(plan.closure, plan.stamps)])
            history = [chunks]
            old = self.previous_state
            if isinstance(old, dict) and isinstance(old.get("history"), list):
                history += old["history"][:KEEP_BUNDLES - 1]
            _write(self._path("state"), dumps({"format": FORMAT, "key": key, "render": render_fp,
                                               "closure": plan.closure, "chunks": chunks, "history": history}))
            keep = {name for h in history for name in h.values()}
            for p in (self._dir / "dags").glob(f"{self.name}-*.pickle"):
                if p.name not in keep:
                    try:
                        p.unlink()
                    except OSError:
                        pass
        except Exception:
            return

    # -- writing --

    def flush(self) -> None:
        """Do the cache writes this parse queued. With ``[chronon] plan_cache_writes = background``
        (the default) a background process does them and the parse returns its DAGs at once: the
        writes (pickling every rendered DAG and planned DAG, a few hundred files) were a fifth of a
        cold parse. It holds the shard's lock file until it is done; the next parse of the shard
        waits for it (:meth:`wait_for_writer`). Inline when that cannot be (no ``fork``, no lock)."""
        writes, self._writes = self._writes, []
        if not writes or not self.enabled:
            return
        if not (settings.get("plan_cache_writes").strip().lower() == "background" and self._spawn_writer(writes)):
            _run(writes)

    def _spawn_writer(self, writes: list[Callable[[], Any]]) -> bool:
        try:
            import fcntl

            if not (_mkdir(self._base) and _mkdir(self._dir)):
                return False
            fd = os.open(self._path("lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except (ImportError, OSError):
            return False
        try:
            if not _lock(fd, fcntl.LOCK_EX, WRITER_WAIT):
                os.close(fd)
                return False  # an earlier writer is stuck: write here
            pid = os.fork()
        except (OSError, AttributeError):
            os.close(fd)
            return False
        if pid == 0:  # a child that only forks the writer, so nobody has to reap it
            try:
                if os.fork() == 0:
                    _writer(fd, writes)
            finally:
                os._exit(0)
        # The lock stays held: the writer has its own copy of the descriptor (flock locks belong
        # to the open file, not the process).
        os.close(fd)
        os.waitpid(pid, 0)
        return True

    def wait_for_writer(self, timeout: float | None = None) -> None:
        """Wait, at most ``timeout`` seconds, for the background writer of an earlier parse of this
        shard (a parse that does not wait would plan and render again what is being written)."""
        if not self.enabled:
            return
        try:
            import fcntl

            fd = os.open(self._path("lock"), os.O_RDONLY)
        except (ImportError, OSError):
            return  # no writer ever ran here
        try:
            _lock(fd, fcntl.LOCK_SH, WRITER_WAIT if timeout is None else timeout)
        finally:
            os.close(fd)  # and with it our shared lock

    # -- pruning --

    def _prune_plans(self, index: dict) -> None:
        """Plan entries no index of this environment names, once the folder holds about two
        generations (a task start reading an index just replaced may then miss one: it plans its
        shard, as without the cache)."""
        folder = self._dir / "plans"
        try:
            names = [p for p in folder.iterdir() if not p.name.startswith(".")]
        except OSError:
            return
        if len(names) < 2 * max(1, len(index["dags"])) * self.shards:
            return
        keep: set[str] = set()
        for other in self._dir.glob("*.index"):
            data = index if other == self._path("index") else self._read(other)
            if isinstance(data, dict) and isinstance(data.get("dags"), dict):
                keep.update(f"{digest}.pickle" for digest, _ in data["dags"].values())
        for p in names:
            if p.name not in keep:
                try:
                    p.unlink()
                except OSError:
                    pass


def _run(writes: list[Callable[[], Any]]) -> None:
    for write in writes:
        try:
            write()
        except Exception:  # best effort: that entry is missing, the next parse rebuilds it
            pass


def _lock(fd: int, kind: int, timeout: float) -> bool:
    """``flock`` ``kind`` on ``fd`` within ``timeout`` seconds."""
    import fcntl

    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def _writer(lock_fd: int, writes: list[Callable[[], Any]]) -> None:
    """The background writer (a grandchild of the parse): its own session, so it outlives the
    parse's process group; no descriptor of the parse but the lock (the dag-processor waits for the
    parse's pipes to close); bounded by an alarm. Never returns."""
    import signal

    try:
        os.setsid()
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(WRITER_SECONDS)
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.closerange(3, lock_fd)
        os.closerange(lock_fd + 1, 1 << 16)
        _run(writes)
    finally:
        os._exit(0)


def _touch(folder: Path) -> None:
    try:
        os.utime(folder)
    except OSError:
        pass


def _prune_envs(base: Path, current: Path) -> None:
    folders = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    folders.sort(key=lambda p: (p == current, p.stat().st_mtime), reverse=True)
    for old in folders[KEEP_ENVS:]:
        shutil.rmtree(old, ignore_errors=True)


# -- the whole repo's key (the plugin page) -----------------------------------------------------------


class Snapshot:
    """The key of a whole repo: every compiled file's stamp, the environment and the deployment."""

    __slots__ = ("key", "env", "files")

    def __init__(self, key: str, env: str, files: dict[str, tuple]) -> None:
        self.key = key
        self.env = env
        self.files = files


def snapshot(root: Path, deployment: Any = None) -> Snapshot:
    """The key of ``root``'s files under ``deployment``: changes with any compiled file, setting or
    code change (the plugin page reloads its plan when it does)."""
    from chronon_airflow.render.shards import own_files

    root = Path(root).resolve()
    env = env_fingerprint(root)
    content = content_stamps()
    files = {rel: stamp(root / rel, content) for rel in own_files(root, 0, 1)}
    deployed = deployment.fingerprint() if deployment is not None else None
    return Snapshot(_hash([env, deployed, sorted(files.items())]), env, files)
