"""DAG-file shards: which DAGs each of ``N`` DAG files builds, and the plan of one shard.

Airflow parses each file of the DAGs folder in its own process, with its own timeout: one file
holding every Chronon DAG is parsed serially and a timeout loses all of them. With ``N`` shard
files (``build_dags(shard=i, shards=N)``, written by ``chronon-airflow dag-files``), file ``i``
builds the DAGs of the teams ``t`` with ``crc32(t) % N == i``: a team's DAGs stay together, a
DAG's file never moves while ``N`` is unchanged (a task start parses only the file its DAG came
from), and a new team never moves another.

A shard reads only what its DAGs are built from: ``teams.json``, the files under
``production/<kind>/<team>/`` of its teams (its *own* files), and the files of other shards its
configs reference (its *closure*): the parent join of a chained GroupBy, and, transitively, the
GroupBys of those joins' parts and their parents, which is everything the loader's chaining-cycle
check walks. So the shard's plan is exactly the whole repo's plan restricted to the shard's DAGs,
and its cost is its share of the repo, not the whole repo. Config errors are split the same way
(by the team folder of the broken file; ``teams.json`` and files outside team folders go to shard
0): with more than one shard, each shard's broken files are the tasks of its own
``chronon.config_errors.shard_<i>`` DAG (one file cannot define another file's DAG id).
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronon_airflow.plan import model as pm

KINDS = ("joins", "group_bys", "staging_queries")
TEAMS_JSON = "teams.json"


def shard_of(name: str, shards: int) -> int:
    """The shard of a team (or of a folder under ``production/<kind>/``)."""
    return zlib.crc32(name.encode()) % shards if shards > 1 else 0


def path_shard(rel: str, shards: int) -> int:
    """The shard a repo file belongs to: that of its team folder (``production/<kind>/<team>/...``);
    ``teams.json`` and anything else belong to shard 0 (``crc32("") == 0``)."""
    parts = rel.split("/")
    return shard_of(parts[2] if len(parts) > 2 and parts[0] == "production" else "", shards)


def config_errors_dag_id(shard: int, shards: int) -> str:
    from chronon_airflow.plan.planner import CONFIG_ERRORS_DAG_ID

    return CONFIG_ERRORS_DAG_ID if shards == 1 else f"{CONFIG_ERRORS_DAG_ID}.shard_{shard}"


def own_files(root: Path, shard: int, shards: int) -> list[str]:
    """``teams.json`` and the production files of the shard (paths relative to ``root``), in the
    loader's walk order: a folder's files by name, then its sub-folders; no dot names; symlinked
    folders are not followed (as ``os.walk``)."""
    import os

    out = [TEAMS_JSON]
    prefix = len(str(root)) + 1

    def visit(path: str) -> None:
        try:
            entries = sorted((e for e in os.scandir(path) if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError:
            return
        dirs = []
        for e in entries:
            if e.is_dir():
                dirs.append(e)
            else:
                out.append(e.path[prefix:])
        for e in dirs:
            if e.is_dir(follow_symlinks=False):
                visit(e.path)

    for kind in KINDS:
        folder = root / "production" / kind
        try:
            entries = sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError:
            continue
        mine = [e for e in entries if shard_of(e.name, shards) == shard]
        out.extend(e.path[prefix:] for e in mine if not e.is_dir())
        for e in mine:
            if e.is_dir() and e.is_dir(follow_symlinks=False):
                visit(e.path)
    return out


def _config_path(kind: str, name: str) -> str | None:
    """Where the compiler writes the ``kind`` config named ``name`` (``team.rest``)."""
    if "." not in name or "/" in name:
        return None
    team, rest = name.split(".", 1)
    return f"production/{kind}/{team}/{rest}"


def references(rel: str, conf: Any) -> list[str]:
    """Repo files whose content the loader's cross-file checks read for the config at ``rel``: a
    GroupBy's JoinSource parents, a join's join-part GroupBys (their JoinSources are walked for
    chaining cycles)."""
    kind = rel.split("/")[1] if rel.count("/") >= 2 else ""
    out: list[str | None] = []
    if kind == "group_bys":
        out += [_config_path("joins", s.join.name) for s in getattr(conf, "sources", ())
                if s.kind == "joinSource" and s.join is not None]
    elif kind == "joins":
        out += [_config_path("group_bys", p.group_by.name) for p in getattr(conf, "join_parts", ())]
    return [p for p in out if p]


@dataclass(frozen=True)
class ShardPlan:
    """The DAGs of one shard and what they were planned from."""

    shard: int
    shards: int
    root: str
    dags: tuple[pm.PlannedDag, ...]
    stamps: dict[str, tuple]  # own files and closure, path -> stamp (taken before reading)
    closure: tuple[str, ...]  # paths of other shards this shard read (or looked for)


def plan_shard(root: Path, shard: int, shards: int, deployment: Any, own: dict[str, tuple],
               stamp: Callable[[str], tuple], parsed: MutableMapping[str, Any] | None = None) -> ShardPlan:
    """Load the shard's own files (``own``: path -> stamp, ``teams.json`` included) and their
    closure, plan them, keep the shard's DAGs. ``stamp(rel)`` stamps a closure file before it is
    read; ``parsed`` is the loader's per-file cache (see :func:`chronon_airflow.config.load_repo`)."""
    from chronon_airflow.config.loader import load_repo
    from chronon_airflow.plan.planner import Planner

    stamps = dict(own)
    files = set(own) - {TEAMS_JSON}
    results: MutableMapping[str, Any] = parsed if parsed is not None else {}
    while True:
        repo = load_repo(root, files=files, parsed=results)
        wanted = {ref for rel in files if (conf := results.get(rel)) is not None for ref in references(rel, conf)}
        new = sorted(wanted - files)
        if not new:
            break
        for rel in new:  # stamped before they are read: a change while loading is seen next time
            stamps[rel] = stamp(rel)
        files.update(new)
    # References inside the shard's own folders need no entry: the walk of those folders sees them.
    closure = tuple(sorted(rel for rel in files if path_shard(rel, shards) != shard))
    planner = Planner(repo, deployment)
    plan = planner.plan()
    dags = [d for d in plan.dags if d.kind != pm.CONFIG_ERRORS and shard_of(d.team, shards) == shard]
    errors = [e for e in plan.errors if path_shard(e.path, shards) == shard]
    if errors:
        errors_dag = Planner(repo, deployment).config_errors(errors)
        dags.append(dataclasses.replace(errors_dag, dag_id=config_errors_dag_id(shard, shards)))
    return ShardPlan(shard, shards, repo.root, tuple(dags),
                     {rel: stamps[rel] for rel in [*own, *closure] if rel in stamps}, closure)


def dag_file_source(shard: int, shards: int) -> str:
    """The text of shard ``shard``'s DAG file (a few lines, as every file in dags/)."""
    return (f'"""Chronon DAGs, shard {shard} of {shards}: the teams t with crc32(t) % {shards} == {shard}.\n'
            f'Written by `chronon-airflow dag-files --shards {shards}` (README "Scale"); do not edit."""\n'
            + PRE_IMPORTS + "from chronon_airflow.render import build_dags\n\n"
            f"globals().update(build_dags(shard={shard}, shards={shards}))\n")


def dag_file_name(shard: int, shards: int) -> str:
    return f"chronon_dags_{shard:0{len(str(shards - 1))}d}.py"


MARKER = "from chronon_airflow.render import build_dags"


def write_dag_files(folder: str | Path, shards: int, replace: bool = False) -> list[Path]:
    """Write the ``shards`` DAG files into ``folder``. Other Chronon DAG files there (any
    ``chronon_dags*.py`` calling ``build_dags``: the single ``chronon_dags.py``, an earlier shard
    count) would define the same DAGs twice: they are removed with ``replace``, else refused."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {"chronon_dags.py"} if shards == 1 else {dag_file_name(i, shards) for i in range(shards)}
    others = [p for p in sorted(folder.glob("chronon_dags*.py"))
              if p.name not in wanted and MARKER in _text(p)]
    if others and not replace:
        raise FileExistsError("other Chronon DAG files would define the same DAGs: "
                              + ", ".join(str(p) for p in others) + " (pass --replace to remove them)")
    for p in others:
        p.unlink()
    written = []
    for i in range(shards):
        path = folder / ("chronon_dags.py" if shards == 1 else dag_file_name(i, shards))
        text = _SINGLE if shards == 1 else dag_file_source(i, shards)
        path.write_text(text)
        written.append(path)
    return written


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


# The heavy Airflow modules every Chronon DAG file needs (the Spark operator's module brings the
# OpenLineage provider, requests and urllib3 when installed): named in each file, the dag-processor
# imports them once before it forks a parser per file ([dag_processor] parsing_pre_import_modules).
PRE_IMPORTS = ("# Pre-imported once by the dag-processor, not at each parse "
               "([dag_processor] parsing_pre_import_modules)\n"
               "import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401\n"
               "import airflow.sdk.bases.sensor  # noqa: F401\n\n")
_SINGLE = ('"""Airflow DAGs generated by chronon-airflow from the configured compiled Chronon repo\n'
           '([chronon] repo_path, else $CHRONON_REPO_PATH, else the project\'s configs/)."""\n'
           + PRE_IMPORTS + "from chronon_airflow.render import build_dags\n\n"
           "globals().update(build_dags())\n")
