"""Bare-Airflow baseline: the same dag_ids, task_ids and edges as the chronon DAGs, built with
EmptyOperator from a precomputed JSON list (``BENCH_BASELINE_JSON``). The harness copies this file
into its own dags folder; it is the floor any DAG factory producing that shape pays. With
``BENCH_BASELINE_SCHEDULES=1`` each DAG also gets its Chronon schedule (the cron timetable with
data intervals, or the asset of a chained GroupBy): the same graph, scheduled as ours are."""
import datetime as dt
import json
import os

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable

_START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
_SCHEDULED = os.environ.get("BENCH_BASELINE_SCHEDULES") == "1"

with open(os.environ["BENCH_BASELINE_JSON"]) as f:
    _SPEC = json.load(f)


def _schedule(s):
    if not _SCHEDULED or not s:
        return None
    if s.startswith("asset:"):
        return [Asset(name=s[6:], uri="chronon://" + s[6:].replace(".", "/", 1))]
    return CronDataIntervalTimetable(s, timezone="UTC")


for _d in _SPEC:
    with DAG(dag_id=_d["dag_id"], schedule=_schedule(_d.get("schedule")), start_date=_START, catchup=False) as _dag:
        _ops = {t["task_id"]: EmptyOperator(task_id=t["task_id"]) for t in _d["tasks"]}
        for _t in _d["tasks"]:
            for _up in _t["upstream"]:
                _ops[_up] >> _ops[_t["task_id"]]
    globals()[_d["dag_id"]] = _dag
