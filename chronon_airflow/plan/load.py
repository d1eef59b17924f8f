"""``load_plan``: the one way every entry point (the DAG file, the CLI, the plugin page, the demo,
the bench) turns a compiled repo into a plan, so all of them see the same plan for the same repo
and deployment."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from chronon_airflow import settings

if TYPE_CHECKING:
    from chronon_airflow.config.model import Repo
    from chronon_airflow.deployment import Deployment
    from chronon_airflow.plan.model import Plan


def repo_root(repo_path: str | Path | None = None) -> Path:
    """``repo_path``, else ``[chronon] repo_path``, else ``$CHRONON_REPO_PATH``, else ``configs/``."""
    return Path(repo_path).expanduser().resolve() if repo_path else settings.repo_path()


def load_plan(repo_path: str | Path | None = None, deployment: Deployment | None = None) -> tuple[Repo, Plan]:
    """The loaded repo and its plan. ``deployment`` defaults to this process's
    (:func:`chronon_airflow.deployment.resolve_deployment`: settings and the Spark connection)."""
    from chronon_airflow.config.loader import load_repo
    from chronon_airflow.plan.planner import build_plan

    if deployment is None:
        from chronon_airflow.deployment import resolve_deployment

        deployment = resolve_deployment()
    repo = load_repo(repo_root(repo_path))
    return repo, build_plan(repo, deployment)
