"""Render layer: the plan as Airflow DAGs. The only layer that imports Airflow's DAG API."""
from __future__ import annotations

from pathlib import Path

from chronon_airflow import settings


def build_dags(repo_path: str | Path | None = None) -> dict:
    """Every chronon-airflow DAG for the configured repo, keyed by dag_id.

    When Airflow parses the file to run one task (``get_parsing_context().dag_id`` is set), only
    that DAG is built: starting a task must not cost a parse of thousands of DAGs.
    """
    from airflow.sdk import get_parsing_context

    from chronon_airflow.config import load_repo
    from chronon_airflow.plan import build_plan
    from chronon_airflow.render.dags import render
    from chronon_airflow.render.spark_connection import configured_spark_connection

    repo = load_repo(repo_path or settings.repo_path())
    plan = build_plan(repo, configured_spark_connection())
    return render(plan, repo, only_dag_id=get_parsing_context().dag_id)
