"""Deterministic synthetic Chronon repo, in the compiled (thrift-JSON) format upstream writes.

``generate(out, joins=N, group_bys=M, teams=T, seed=S)`` writes ``teams.json`` and
``production/{joins,group_bys}/<team>/<name>`` exactly as ``configs/compile.sh`` lays them out:
thrift bools as 0/1, ``customJson`` and every ``metaData.dependencies`` entry as JSON *strings*,
join parts embedding their whole GroupBy, and a chained GroupBy embedding its whole parent join in
``sources[].joinSource.join`` (which is what makes real repos big).

Every join has model transforms on the ``reference`` backend (1–3 models, 1–4 dependencies), every
chained GroupBy reads one join's output through a JoinSource. Models reuse four artifacts
(``bench_scorer_1..3`` and ``bench_embedder``, via ``modelBackendParams.model_name``) so the
reference backend can register all of them without fitting thousands of pipelines, while each
model keeps a unique ``metaData.name`` per join (the backend stores models by definition hash).

The same arguments always give byte-identical files (a seeded ``random.Random``, sorted keys).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path
from typing import Any

DEFAULT_JOINS, DEFAULT_GROUP_BYS, DEFAULT_TEAMS = 2000, 1000, 40
START = "2024-03-15"
# thrift DataKind / Operation / TimeUnit values used below.
LONG, DOUBLE, STRING, LIST, STRUCT = 4, 6, 7, 12, 13
COUNT, SUM = 6, 7
NUMERIC_COLUMNS = ("amount", "quantity", "latency_ms")


def team_name(i: int) -> str:
    return f"team_{i:02d}"


def join_name(team: str, i: int) -> str:
    return f"{team}.mt_join_{i:05d}.v1"


def _dep(table: str, start: str | None) -> str:
    # Upstream writes each dependency as a JSON string inside the list.
    return json.dumps({"name": f"wait_for_{table}_ds", "spec": f"{table}/ds={{{{ ds }}}}", "start": start,
                       "end": None})


def _custom_join() -> str:
    return json.dumps({"check_consistency": False, "lag": 0, "join_tags": None, "join_part_tags": {}})


def _custom_gb() -> str:
    return json.dumps({"lag": 0, "groupby_tags": None, "column_tags": {}})


def _window(length: int, unit: int) -> dict[str, int]:
    return {"length": length, "timeUnit": unit}


def _field(name: str, kind: int, elem: int | None = None) -> dict[str, Any]:
    dtype: dict[str, Any] = {"kind": kind}
    if elem is not None:
        dtype["params"] = [{"name": "elem", "dataType": {"kind": elem}}]
    return {"name": name, "dataType": dtype}


def _left(table: str, topic: str | None) -> dict[str, Any]:
    selects = {"entity_id": "entity_id", "text": "lower(trim(text))", "ts": "ts"}
    selects.update({c: c for c in NUMERIC_COLUMNS})
    events: dict[str, Any] = {"table": table,
                              "query": {"selects": selects, "startPartition": START, "timeColumn": "ts",
                                        "setups": []}}
    if topic:
        events["topic"] = topic
    return {"events": events}


def _join_part_group_by(team: str, i: int, table: str, dep: str) -> dict[str, Any]:
    return {
        "metaData": {"name": f"{team}.entity_stats_{i:05d}.v1", "online": 1, "customJson": _custom_gb(),
                     "dependencies": [dep], "team": team, "offlineSchedule": "@daily"},
        "sources": [{"events": {"table": table, "query": {
            "selects": {"entity_id": "entity_id", "amount": "amount"}, "startPartition": START,
            "timeColumn": "ts", "setups": []}}}],
        "keyColumns": ["entity_id"],
        "aggregations": [
            {"inputColumn": "amount", "operation": SUM, "argMap": {},
             "windows": [_window(1, 1), _window(7, 1), _window(30, 1)]},
            {"inputColumn": "amount", "operation": COUNT, "argMap": {}, "windows": [_window(7, 1)]},
        ],
    }


def _model(join_index: int, k: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    """One reference-backend model and its inputMappings (raw-join column per input field)."""
    name = f"model_{join_index:05d}_{k}"
    if rng.random() < 0.25:
        model = {"metaData": {"name": name},
                 "inferenceSpec": {"modelBackend": "reference",
                                   "modelBackendParams": {"model_name": "bench_embedder", "model_version": "1"}},
                 "inputSchema": {"kind": STRUCT, "params": [_field("text", STRING)], "name": f"{name}_inputs"},
                 "outputSchema": {"kind": STRUCT, "params": [_field("embedding", LIST, DOUBLE)],
                                  "name": f"{name}_outputs"}}
        return model, {}
    n = rng.randint(1, 3)
    inputs = [f"x{j}" for j in range(n)]
    model = {"metaData": {"name": name},
             "inferenceSpec": {"modelBackend": "reference",
                               "modelBackendParams": {"model_name": f"bench_scorer_{n}", "model_version": "1"}},
             "inputSchema": {"kind": STRUCT, "params": [_field(x, LONG) for x in inputs], "name": f"{name}_inputs"},
             "outputSchema": {"kind": STRUCT, "params": [_field("score", DOUBLE)], "name": f"{name}_outputs"}}
    return model, {x: NUMERIC_COLUMNS[j] for j, x in enumerate(inputs)}


def make_join(i: int, team: str, namespace: str, rng: random.Random) -> dict[str, Any]:
    n_deps = rng.randint(1, 4)
    tables = [f"src_{team}.events_{(i * 7 + d) % 997:03d}" for d in range(n_deps)]
    # One table per dependency (names must differ, or the plan would merge two sensors).
    tables = list(dict.fromkeys(tables))
    deps = [_dep(t, START) for t in tables]
    topic = f"{tables[0]}/serde=avro" if i % 2 == 0 else None  # half stream: their chained GroupBys too
    transforms = []
    for k in range(rng.randint(1, 3)):
        model, mappings = _model(i, k, rng)
        t: dict[str, Any] = {"model": model, "prefix": f"m{k}"}
        if mappings:
            t["inputMappings"] = mappings
        transforms.append(t)
    return {
        "metaData": {
            "name": join_name(team, i), "online": 1, "production": 0, "customJson": _custom_join(),
            "dependencies": deps, "tableProperties": {"source": "chronon"}, "outputNamespace": namespace,
            "team": team, "offlineSchedule": "@never" if i % 10 == 9 else "@daily",
            "description": f"Synthetic model-transform join {i} for the scale benchmark.",
        },
        "left": _left(tables[0], topic),
        "joinParts": [{"groupBy": _join_part_group_by(team, i, tables[0], deps[0])}],
        "modelTransforms": {"transforms": transforms, "passthroughFields": ["entity_id"]},
    }


def make_group_by(g: int, team: str, namespace: str, parent: dict[str, Any]) -> dict[str, Any]:
    pmeta = parent["metaData"]
    parent_table = f"{pmeta['outputNamespace']}.{pmeta['name'].replace('.', '_')}"
    gb: dict[str, Any] = {
        "metaData": {"name": f"{team}.chained_stats_{g:05d}.v1", "online": 1, "customJson": _custom_gb(),
                     "dependencies": [_dep(parent_table, None)], "tableProperties": {"source": "chronon"},
                     "outputNamespace": namespace, "team": team, "offlineSchedule": "@daily"},
        "sources": [{"joinSource": {"join": parent, "query": {
            "selects": {"entity_id": "entity_id", "m0_out": "entity_id"}, "timeColumn": "ts", "setups": []}}}],
        "keyColumns": ["entity_id"],
        "aggregations": [{"inputColumn": "m0_out", "operation": COUNT, "argMap": {},
                          "windows": [_window(1, 1), _window(7, 1)]}],
    }
    if g % 3 == 0:
        gb["backfillStartDate"] = START
    return gb


def make_teams(n: int) -> dict[str, Any]:
    teams: dict[str, Any] = {"default": {
        "description": "Defaults inherited by every team unless the team overrides them.",
        "namespace": "chronon_default", "table_properties": {"source": "chronon"},
        "common_env": {"VERSION": "0.0.115", "JOB_MODE": "local[2]", "PARTITION_COLUMN": "ds",
                       "PARTITION_FORMAT": "yyyy-MM-dd"},
        "production": {"backfill": {"EXECUTOR_CORES": "1", "DRIVER_MEMORY": "1G", "EXECUTOR_MEMORY": "1G",
                                    "PARALLELISM": "4"},
                       "upload": {"EXECUTOR_CORES": "1", "EXECUTOR_MEMORY": "1G", "PARALLELISM": "4"},
                       "streaming": {"EXECUTOR_CORES": "1", "EXECUTOR_MEMORY": "1G", "PARALLELISM": "2"}}}}
    for t in range(n):
        name = team_name(t)
        teams[name] = {"description": f"Synthetic team {t}.", "namespace": f"{name}_features",
                       "maintainer_emails": [f"{name}-ml@example.com"], "airflow_queue": "default",
                       "dag_start_date": START}
    return teams


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Upstream's compiler writes indented JSON; the indent keeps file sizes realistic.
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def generate(out: str | Path, joins: int = DEFAULT_JOINS, group_bys: int = DEFAULT_GROUP_BYS,
             teams: int = DEFAULT_TEAMS, seed: int = 7) -> dict[str, int]:
    """Write the repo into ``out`` (its ``production/`` is replaced); returns file counts."""
    if joins < 1 or teams < 1 or group_bys < 0:
        raise ValueError("need at least one join and one team")
    out = Path(out)
    shutil.rmtree(out / "production", ignore_errors=True)
    rng = random.Random(seed)
    team_json = make_teams(teams)
    _write(out / "teams.json", team_json)
    made: list[dict[str, Any]] = []
    for i in range(joins):
        team = team_name(i % teams)
        join = make_join(i, team, team_json[team]["namespace"], rng)
        made.append(join)
        _write(out / "production" / "joins" / team / join["metaData"]["name"].split(".", 1)[1], join)
    for g in range(group_bys):
        parent = made[(g * 3) % joins]  # spread over joins, odd and even (streaming and not)
        team = parent["metaData"]["team"]
        gb = make_group_by(g, team, team_json[team]["namespace"], parent)
        _write(out / "production" / "group_bys" / team / gb["metaData"]["name"].split(".", 1)[1], gb)
    return {"joins": joins, "group_bys": group_bys, "teams": teams}


def expected_dag_count(joins: int, group_bys: int, teams: int) -> int:
    """DAGs the plan must have for a generated repo (see make_join / make_group_by): a backfill per
    join, a metadata upload per team with joins, per chained GroupBy an upload (all are online), a
    backfill for every third and a streaming keeper when the parent join's left has a topic."""
    parents = [(g * 3) % joins for g in range(group_bys)]
    return (joins + min(teams, joins) + group_bys + sum(1 for g in range(group_bys) if g % 3 == 0)
            + sum(1 for p in parents if p % 2 == 0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chronon_bench.generator", description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--joins", type=int, default=DEFAULT_JOINS)
    p.add_argument("--group-bys", type=int, default=DEFAULT_GROUP_BYS)
    p.add_argument("--teams", type=int, default=DEFAULT_TEAMS)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args(argv)
    print(generate(a.out, a.joins, a.group_bys, a.teams, a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
