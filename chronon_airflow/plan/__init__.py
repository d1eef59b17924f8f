"""Plan layer: which DAGs, tasks and tables. Pure Python, no Airflow import."""
from typing import Any

from chronon_airflow.plan.model import Plan, PlannedDag, PlannedTask

__all__ = ["Plan", "PlannedDag", "PlannedTask", "build_plan", "dag_id", "load_plan"]


def __getattr__(name: str) -> Any:
    # The planner (and the config loader it imports) on first use: a task start renders one DAG
    # from its cached plan entry and never plans.
    if name in ("build_plan", "dag_id"):
        from chronon_airflow.plan import planner

        return getattr(planner, name)
    if name == "load_plan":
        from chronon_airflow.plan.load import load_plan

        return load_plan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
