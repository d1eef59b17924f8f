"""``python -m chronon_bench.serialize_ablation``: what each of our DAG and task features costs when
Airflow serializes the DAGs (issue 16's P7b, serialize per task against bare Airflow).

It builds the chronon DAGs of a compiled repo (a generated one by default), and the same graph of
``EmptyOperator``s from ``baseline_dags.py`` with and without our schedules, then copies of ours
with one feature taken off each (the task owner, the failure callback, a DAG's params, ...), and
one with all of them off. Each set is serialized with ``DagSerialization.to_dict`` (what the
dag-processor does per DAG) in interleaved rounds (shuffled), best of ``--rounds``, in process CPU time, with
the collector paused while a set is timed. A feature that no longer changes the serialized DAGs
(an Airflow upgrade renamed what it sets) is an error, not a silent zero.

A second table gives the per-task part alone: per operator class, what
``OperatorSerialization.serialize_operator`` costs for one of our tasks, for the same task with
every task feature taken off, and for a bare ``EmptyOperator`` (no DAG-level fields, no schedule).

Run it on a machine that is otherwise idle; ``--rounds 7`` at the default scale takes about a minute.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import runpy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

BASELINE_FILE = Path(__file__).with_name("baseline_dags.py")

Strip = Callable[[Any], None]


def _tasks(set_attr: Callable[[Any], None]) -> Strip:
    def strip(dag: Any) -> None:
        for task in dag.tasks:
            set_attr(task)
    return strip


def _dag(name: str, empty: Callable[[], Any]) -> Strip:
    return lambda dag: setattr(dag, name, empty())


def strips() -> dict[str, Strip]:
    """Feature -> how to take it off a built DAG (to the value a bare DAG or task has)."""
    from airflow.sdk.definitions.param import ParamsDict

    return {
        "task owner": _tasks(lambda t: setattr(t, "owner", "airflow")),
        "task failure callback": _tasks(lambda t: setattr(t, "on_failure_callback", None)),
        "task retries": _tasks(lambda t: setattr(t, "retries", 0)),
        "task execution_timeout": _tasks(lambda t: setattr(t, "execution_timeout", None)),
        "task pool": _tasks(lambda t: setattr(t, "pool", "default_pool")),
        "task ui_color": _tasks(lambda t: setattr(t, "ui_color", "#fff")),
        "task outlets": _tasks(lambda t: setattr(t, "outlets", [])),
        "task extra links": _tasks(lambda t: setattr(t, "operator_extra_links", ())),
        "task template_fields": _tasks(lambda t: setattr(t, "template_fields", ())),
        "DAG params": _dag("params", ParamsDict),
        "DAG doc_md": _dag("doc_md", lambda: None),
        "DAG description": _dag("description", lambda: None),
        "DAG tags": _dag("tags", set),
        "DAG deadline": _dag("deadline", lambda: None),
        "DAG default_args": _dag("default_args", dict),
        "DAG dagrun_timeout": _dag("dagrun_timeout", lambda: None),
    }


def _serialized(dags: list[Any]) -> str:
    from airflow.serialization.serialized_objects import DagSerialization

    return json.dumps([DagSerialization.to_dict(d) for d in dags], sort_keys=True, default=str)


def _baseline_spec_file(repo: Path, work: Path) -> Path:
    """The bare graph's spec (``baseline_dags.py`` reads it) for ``repo``, written into ``work``."""
    from chronon_bench.harness import baseline_spec

    spec_file = work / "baseline.json"
    spec_file.write_text(json.dumps(baseline_spec(repo)))
    return spec_file


def _baseline(spec_file: Path, scheduled: bool) -> list[Any]:
    from airflow.sdk import DAG

    settings = {"BENCH_BASELINE_JSON": str(spec_file), "BENCH_BASELINE_SCHEDULES": "1" if scheduled else "0"}
    with mock.patch.dict(os.environ, settings):  # what the baseline file reads, for this run only
        return [v for v in runpy.run_path(str(BASELINE_FILE)).values() if isinstance(v, DAG)]


def measure(repo: Path, work: Path, rounds: int) -> dict[str, Any]:
    """Best-of-``rounds`` seconds to serialize each set of DAGs (see the module)."""
    from airflow.serialization.serialized_objects import DagSerialization

    from chronon_airflow.render import build_dags

    spec_file = _baseline_spec_file(repo, work)

    def ours() -> list[Any]:
        return list(build_dags(repo).values())

    sets: dict[str, list[Any]] = {"bare": _baseline(spec_file, False),
                                  "bare with our schedules": _baseline(spec_file, True), "ours": ours()}
    reference = _serialized(sets["ours"])
    everything = ours()
    for name, strip in strips().items():
        stripped = ours()
        for dag in stripped + everything:
            strip(dag)
        if _serialized(stripped) == reference:
            raise RuntimeError(f"taking off {name!r} does not change the serialized DAGs: the ablation is stale")
        sets[f"ours without {name}"] = stripped
    sets["ours without all of the above"] = everything

    best = dict.fromkeys(sets, float("inf"))
    gc.collect()
    order, shuffle = list(sets), random.Random(16).shuffle
    for _ in range(rounds):
        shuffle(order)  # interleaved, in a new order each round: drift and position hit every set alike
        for name in order:
            dags = sets[name]
            gc.disable()
            t0 = time.process_time()
            for dag in dags:
                DagSerialization.to_dict(dag)
            best[name] = min(best[name], time.process_time() - t0)
            gc.enable()
    return {"dags": len(sets["ours"]), "tasks": sum(len(d.tasks) for d in sets["ours"]), "seconds": best}


def _task_seconds(tasks: list[Any], rounds: int) -> float:
    """Best-of-``rounds`` CPU seconds per task of ``OperatorSerialization.serialize_operator``."""
    from airflow.serialization.serialized_objects import OperatorSerialization

    best = float("inf")
    for _ in range(rounds):
        gc.disable()
        t0 = time.process_time()
        for task in tasks:
            OperatorSerialization.serialize_operator(task)
        best = min(best, (time.process_time() - t0) / len(tasks))
        gc.enable()
    return best


def measure_tasks(repo: Path, work: Path, rounds: int) -> dict[str, Any]:
    """Per operator class, what serializing one task costs: ours as built, ours with every task
    feature of :func:`strips` taken off, and the bare graph's ``EmptyOperator``. The per-task part
    of P7b without the DAG-level fields and the schedule, so a few microseconds show above the noise."""
    from chronon_airflow.render import build_dags

    spec_file = _baseline_spec_file(repo, work)
    bare = [t for dag in _baseline(spec_file, False) for t in dag.tasks]
    ours = [t for dag in build_dags(repo).values() for t in dag.tasks]
    stripped_dags = list(build_dags(repo).values())
    for name, strip in strips().items():
        if name.startswith("task "):
            for dag in stripped_dags:
                strip(dag)
    stripped = [t for dag in stripped_dags for t in dag.tasks]
    by_class: dict[str, tuple[list[Any], list[Any]]] = {}
    for task, without in zip(ours, stripped, strict=True):
        if task is without or (task.dag_id, task.task_id) != (without.dag_id, without.task_id):
            raise RuntimeError("two builds of the repo gave different or shared tasks: nothing to compare")
        built, taken_off = by_class.setdefault(type(task).__name__, ([], []))
        built.append(task)
        taken_off.append(without)
    classes = {name: {"tasks": len(built), "ours": _task_seconds(built, rounds),
                      "without task features": _task_seconds(without, rounds)}
               for name, (built, without) in sorted(by_class.items())}
    return {"EmptyOperator": _task_seconds(bare, rounds), "classes": classes}


def task_table(result: dict[str, Any]) -> str:
    empty = result["EmptyOperator"]
    lines = ["Per task: OperatorSerialization.serialize_operator, CPU us (best of rounds); "
             f"EmptyOperator {empty * 1e6:.1f} us",
             f"  {'operator class':36} {'tasks':>6} {'ours':>7} {'vs Empty':>9} "
             f"{'without task features':>22} {'vs Empty':>9}"]
    for name, c in result["classes"].items():
        lines.append(f"  {name:36} {c['tasks']:6d} {c['ours'] * 1e6:7.1f} {c['ours'] / empty:8.2f}x "
                     f"{c['without task features'] * 1e6:22.1f} {c['without task features'] / empty:8.2f}x")
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    s = result["seconds"]
    bare, scheduled, ours = s["bare"], s["bare with our schedules"], s["ours"]
    lines = [f"{result['dags']:,} DAGs, {result['tasks']:,} tasks: DagSerialization.to_dict, CPU ms (best of rounds)",
             f"  {'set':40} {'ms':>8} {'vs bare':>8} {'vs bare+sched':>14} {'saves':>8}"]
    for name, v in s.items():
        lines.append(f"  {name:40} {v * 1e3:8.1f} {v / bare:7.2f}x {v / scheduled:13.2f}x {(ours - v) * 1e3:8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chronon_bench.serialize_ablation")
    p.add_argument("--repo", help="a compiled repo (default: generate one)")
    p.add_argument("--joins", type=int, default=200)
    p.add_argument("--group-bys", type=int, default=100)
    p.add_argument("--teams", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="chronon-ablation-"))
    # A throwaway Airflow home and plan cache: nothing here may read or write the user's.
    os.environ.update(AIRFLOW_HOME=str(work / "airflow_home"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
                      AIRFLOW__CHRONON__PLAN_CACHE_DIR=str(work / "plan_cache"))
    if a.repo:
        repo = Path(a.repo)
    else:
        from chronon_bench.generator import generate

        repo = work / "repo"
        generate(repo, joins=a.joins, group_bys=a.group_bys, teams=a.teams)
    print(table(measure(repo, work, max(1, a.rounds))))
    print()
    print(task_table(measure_tasks(repo, work, max(1, a.rounds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
