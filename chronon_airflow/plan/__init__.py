"""Plan layer: which DAGs, tasks and tables. Pure Python, no Airflow import."""
from chronon_airflow.plan.model import Plan, PlannedDag, PlannedTask
from chronon_airflow.plan.planner import build_plan, dag_id

__all__ = ["Plan", "PlannedDag", "PlannedTask", "build_plan", "dag_id"]
