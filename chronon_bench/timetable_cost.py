"""``python -m chronon_bench.timetable_cost``: what Airflow's serializer charges a DAG for having a
schedule, with nothing of chronon-airflow in it (a reproduction for an upstream report; see
docs/upstream/serializer-timetable-cost.md).

The same two-``EmptyOperator`` DAG is serialized with ``DagSerialization.to_dict`` unscheduled, on
the Task SDK's cron timetable, and holding the scheduler-side cron timetable; then the calls behind
the difference are timed alone: comparing a scheduler-side cron timetable with ``[]`` (the
serializer's ``_is_excluded`` compares with ``[] () set() {}``, and ``CronMixin.__eq__`` passes the
other side through ``coerce_to_core_timetable``), ``coerce_to_core_timetable`` of a scheduler-side
timetable (an ``isinstance`` against the runtime-checkable ``Timetable`` Protocol) and of the SDK's
(which builds the scheduler-side class: ``cron_descriptor`` describes the expression). Microseconds
per call, best of 5 repeats.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CRON = "0 0 * * *"


def _per_call_us(fn: Callable[[], Any], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def measure(scale: float = 1.0) -> dict[str, float]:
    """Microseconds per call of each row (``scale`` shrinks the call counts, for a quick check)."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.serialization.serialized_objects import DagSerialization

    def two_tasks(dag_id: str, schedule: Any) -> Any:
        with DAG(dag_id, schedule=schedule, start_date=START, catchup=False) as dag:
            EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
        return dag

    sdk = CronDataIntervalTimetable(CRON, timezone="UTC")
    core = coerce_to_core_timetable(sdk)
    holding_core = two_tasks("core_cron", None)
    holding_core.timetable = core  # what a DAG given the scheduler-side class holds
    dags = {"unscheduled": two_tasks("unscheduled", None), "sdk cron": two_tasks("sdk_cron", sdk),
            "core cron": holding_core}
    n = max(1, int(500 * scale))
    out = {}
    for name, dag in dags.items():
        DagSerialization.to_dict(dag)  # the serializer's own caches, filled once per process
        out[f"DagSerialization.to_dict, 2-task DAG, {name}"] = _per_call_us(partial(DagSerialization.to_dict, dag), n)
    out["core cron timetable == [] (4 such per DAG)"] = _per_call_us(lambda: core == [], n * 4)
    out["coerce_to_core_timetable(core cron)"] = _per_call_us(lambda: coerce_to_core_timetable(core), n * 4)
    out["coerce_to_core_timetable(sdk cron)"] = _per_call_us(lambda: coerce_to_core_timetable(sdk), n)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m chronon_bench.timetable_cost", description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the default call counts")
    a = p.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="timetable-cost-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    import airflow

    print(f"Airflow {airflow.__version__}, Python {sys.version.split()[0]}: microseconds per call")
    for name, us in measure(a.scale).items():
        print(f"  {name:52} {us:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
