"""Render layer: the plan as Airflow DAGs. The only layer that imports Airflow's DAG API."""
from __future__ import annotations

import gc
from pathlib import Path


def build_dags(repo_path: str | Path | None = None) -> dict:
    """Every chronon-airflow DAG for the configured repo, keyed by dag_id.

    When Airflow parses the file to run one task (``get_parsing_context().dag_id`` is set), only
    that DAG is built: starting a task must not cost a parse of thousands of DAGs. The loaded repo
    and plan come from :mod:`chronon_airflow.render.cache` while no input changed.
    """
    # Everything built here lives as long as the parse. In a process that already holds Airflow's
    # few hundred thousand objects, each generational GC pass triggered by these allocations (the
    # operator modules' class creation, unpickling or constructing 20,000 operators) walks them
    # all and frees nothing; pausing the collector for the build is worth ~1/3 of a task-start parse.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_dags(repo_path)
    finally:
        if enabled:
            gc.enable()


def _build_dags(repo_path: str | Path | None) -> dict:
    from airflow.sdk import get_parsing_context

    from chronon_airflow import deployment as dep
    from chronon_airflow import settings
    from chronon_airflow.plan.load import repo_root
    from chronon_airflow.render import cache

    root = repo_root(repo_path)
    only = get_parsing_context().dag_id
    if only is not None:
        # A task start: the operators never read the Spark connection (the hook resolves it when
        # the task runs), so the deployment is the settings alone, without a connection lookup.
        entry = cache.load_one_by_inputs(root, only)
        if entry is not None:
            return _render_one(entry, only, dep.from_settings(settings.snapshot(), None))
    deployment = dep.resolve_deployment()
    snap = cache.snapshot(root, deployment)
    if only is None:
        dags = cache.load_dags(snap.key)
        if dags is not None:
            cache.point_to(snap)
            return dags
    else:
        entry = cache.load_one(snap, only)
        if entry is not None:
            return _render_one(entry, only, deployment)
    hit = cache.load_full(snap)
    if hit is not None:
        root_s, plan = hit
    else:
        from chronon_airflow.plan.load import load_plan

        repo, plan = load_plan(root, deployment)
        root_s = repo.root
        cache.store(snap, repo, plan)
    from chronon_airflow.render.dags import render

    dags = render(plan, root_s, deployment, only_dag_id=only)
    if only is None:
        cache.store_dags(snap.key, dags)
    return dags


def _render_one(entry: tuple, dag_id: str, deployment) -> dict:
    """A task start's DAG from its cached plan entry: the plan carries everything render() reads."""
    from chronon_airflow.plan.model import Plan
    from chronon_airflow.render.dags import render

    planned, root, _inputs = entry
    return render(Plan(dags=(planned,), errors=()), root, deployment, only_dag_id=dag_id)


def planned_dag(dag_id: str, repo_path: str | Path | None = None):
    """One generated DAG's plan entry (``None`` if the repo has no such DAG), read from the parse
    cache the dag-processor keeps; only without a usable entry are the repo loaded and planned."""
    from chronon_airflow.plan.load import load_plan, repo_root
    from chronon_airflow.render import cache

    root = repo_root(repo_path)
    entry = cache.load_one_by_inputs(root, dag_id)
    if entry is not None:
        return entry[0]
    _repo, plan = load_plan(root)
    return next((d for d in plan.dags if d.dag_id == dag_id), None)
