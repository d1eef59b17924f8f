"""Render layer: the plan as Airflow DAGs. The only layer that imports Airflow's DAG API."""
from __future__ import annotations

import gc
from pathlib import Path


def build_dags(repo_path: str | Path | None = None, shard: int | None = None, shards: int | None = None) -> dict:
    """The chronon-airflow DAGs of the configured repo, keyed by dag_id: all of them, or with
    ``shard=i, shards=N`` those of DAG file shard ``i`` of ``N`` (:mod:`chronon_airflow.render.shards`:
    the teams ``t`` with ``crc32(t) % N == i``).

    When Airflow parses the file to run one task (``get_parsing_context().dag_id`` is set), only
    that DAG is built: starting a task must not cost a parse of thousands of DAGs. Loading,
    planning and rendering are cached per file and per DAG (:mod:`chronon_airflow.render.cache`).
    """
    if shard is None:
        shard, shards = 0, 1
    if shards is None or not 0 <= shard < shards:
        raise ValueError(f"shard {shard} of {shards}: need 0 <= shard < shards")
    # Everything built here lives as long as the parse. In a process that already holds Airflow's
    # few hundred thousand objects, each generational GC pass triggered by these allocations (the
    # operator modules' class creation, unpickling or constructing 20,000 operators) walks them
    # all and frees nothing; pausing the collector for the build is worth ~1/3 of a task-start parse.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _build_dags(repo_path, shard, shards)
    finally:
        if enabled:
            # And none after it either: re-enabled as it was, the collector's next young-generation
            # pass would walk every object the build made (~50 ms per 500 DAGs). Freezing and
            # unfreezing (two list splices) moves them straight to the oldest generation, whose
            # full passes are rare; garbage among them is still collected there. Not when the
            # process froze objects itself (a forking executor keeps its pages shared so): that
            # unfreeze would release its objects too.
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _build_dags(repo_path: str | Path | None, shard: int, shards: int) -> dict:
    from airflow.sdk import get_parsing_context

    from chronon_airflow import deployment as dep
    from chronon_airflow import settings
    from chronon_airflow.plan.load import repo_root
    from chronon_airflow.render.cache import ShardCache

    root = repo_root(repo_path)
    cache = ShardCache(root, shard, shards)
    only = get_parsing_context().dag_id
    cache.wait_for_writer()
    # The deployment is the [chronon] settings alone: the Spark connection only changes the argv
    # a plan *shows* (``chronon-airflow plan``); the operators never read it (the Spark hook
    # resolves it when a task runs). Looking it up at every parse would cost a secrets-backend
    # round trip (4 s in a dag-processor's parser when the connection is missing).
    deployment = dep.from_settings(settings.snapshot(), None)
    if only is not None:
        entry = cache.task_entry(only)
        if entry is not None:
            planned, root_s = entry
            return _render([planned], root_s, deployment)
        render_fp = None
    else:
        render_fp = cache.render_fingerprint(deployment) if cache.enabled else None
        dags = cache.load_dags(render_fp)
        if dags is not None:
            return dags
    from chronon_airflow.render.shards import plan_shard

    parsed = cache.parsed()
    plan = plan_shard(cache.root, cache.shard, cache.shards, deployment, cache.own(), cache.stamp, parsed)
    def render(todo: list) -> dict:
        return _render(todo, plan.root, deployment)

    if only is None and not cache.has_history():
        dags = cache.render_new(plan, parsed, render_fp, render)  # an empty cache: everything is new
    else:
        hashes = cache.hashes(plan) if cache.enabled else {}
        cache.store_plan(plan, hashes, parsed)
        dags = render([d for d in plan.dags if d.dag_id == only]) if only is not None \
            else cache.render(plan, hashes, render_fp, render)
    cache.flush()
    return dags


def _render(planned: list, root: str, deployment) -> dict:
    from chronon_airflow.plan.model import Plan
    from chronon_airflow.render.dags import render

    if not planned:
        return {}
    return render(Plan(dags=tuple(planned), errors=()), root, deployment)
