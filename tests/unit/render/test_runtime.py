"""Time and capacity, per settings: execution_timeout per task kind, dagrun_timeout, the Spark pool,
retries, the landing Deadline alert of join DAGs; the config-errors DAG active and scheduled; tags
and descriptions of every family; range params on every DAG that computes a range."""
from __future__ import annotations

import datetime as dt

import pytest

from chronon_airflow.plan import model as pm
from tests.support.paths import CONFIGS, CORPUS, writable_copy


def _render(repo, **settings):
    from chronon_airflow.deployment import from_settings
    from chronon_airflow.plan import load_plan
    from chronon_airflow.render.dags import render

    deployment = from_settings({k: str(v) for k, v in settings.items()}, None)
    loaded, plan = load_plan(repo, deployment)
    return plan, render(plan, loaded.root, deployment)


def test_timeouts_pool_and_retries_follow_the_settings():
    plan, dags = _render(CONFIGS)
    join = dags["chronon.join_backfill.search.query_relevance.v1"]
    assert join.dagrun_timeout == dt.timedelta(days=2)
    raw = join.get_task("raw_join")
    assert raw.execution_timeout == dt.timedelta(hours=12) and raw.pool == "chronon_spark"
    assert raw.retries == 1 and raw.retry_delay == dt.timedelta(minutes=5)
    assert join.get_task("register_model.query_encoder").execution_timeout == dt.timedelta(minutes=30)
    assert join.get_task("register_model.query_encoder").pool == "default_pool"
    assert join.get_task("check_range").execution_timeout == dt.timedelta(minutes=5)
    assert join.get_task("check_range").retries == 0
    # The waits are bounded by their own timeouts (sensor_timeout, batch_job_timeout).
    assert join.get_task("wait_for_batch_inference").execution_timeout is None
    assert join.get_task("wait_for_search_data.search_events_ds").execution_timeout is None

    _, dags = _render(CONFIGS, execution_timeouts='{"spark": 600, "raw_join": 0, "register_model": 60}',
                      dagrun_timeout=0, spark_pool="", retries=3, retry_delay=7)
    join = dags["chronon.join_backfill.search.query_relevance.v1"]
    assert join.dagrun_timeout is None
    assert join.get_task("raw_join").execution_timeout is None  # its own key wins over "spark"
    assert join.get_task("stats_summary").execution_timeout == dt.timedelta(seconds=600)
    assert join.get_task("register_model.query_encoder").execution_timeout == dt.timedelta(seconds=60)
    assert join.get_task("raw_join").pool == "default_pool"
    assert join.get_task("raw_join").retries == 3 and join.get_task("raw_join").retry_delay == dt.timedelta(seconds=7)
    upload = dags["chronon.group_by_upload.search.query_embedding_stats.v1"]
    assert upload.get_task("group_by_upload").execution_timeout == dt.timedelta(seconds=600)


def test_a_bad_timeout_setting_is_named():
    from chronon_airflow.exceptions import InvalidConfig

    with pytest.raises(InvalidConfig, match="not a JSON object") as e:
        _render(CONFIGS, execution_timeouts="[1, 2]")
    assert e.value.field == "[chronon] execution_timeouts"


def test_scheduled_join_dags_have_a_landing_deadline_that_emails_the_owners():
    from airflow.serialization.serialized_objects import DagSerialization

    plan, dags = _render(CONFIGS, landing_deadline_hours=6)
    join = dags["chronon.join_backfill.search.query_relevance.v1"]
    (alert,) = join.deadline if isinstance(join.deadline, list) else [join.deadline]
    # From when the scheduler queues the run, i.e. when its interval ended, 6 hours.
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.interval == dt.timedelta(hours=6)
    assert alert.callback.path == "chronon_airflow.notifications.deadline.landing_deadline_missed"
    assert alert.callback.kwargs["recipients"] == list(plan.dag(join.dag_id).owners)
    assert alert.callback.kwargs["output_table"] == "search_features.search_query_relevance_v1"
    plain = dags["chronon.join_backfill.search.plain_join.v1"]
    plain_alert = plain.deadline[0] if isinstance(plain.deadline, list) else plain.deadline
    assert plain_alert.callback.kwargs["output_table"] == "search_features.search_plain_join_v1"
    # It survives the serialization the dag-processor does.
    assert DagSerialization.to_dict(join)
    # Only join DAGs; off with 0.
    assert not dags["chronon.group_by_upload.search.query_embedding_stats.v1"].deadline
    _, dags = _render(CONFIGS, landing_deadline_hours=0)
    assert not dags["chronon.join_backfill.search.query_relevance.v1"].deadline


def test_the_config_errors_dag_is_active_scheduled_and_alerts(tmp_path):
    root = writable_copy(CONFIGS, tmp_path / "repo")
    (root / "production/joins/search/broken.v1").write_text("{not json")
    plan, dags = _render(root)
    errors = dags["chronon.config_errors"]
    assert errors.is_paused_upon_creation is False
    assert plan.dag("chronon.config_errors").schedule == "@hourly"
    assert errors.timetable.expression == "0 * * * *" and errors.max_active_runs == 1
    (task,) = errors.tasks
    (notifier,) = task.on_failure_callback
    assert notifier.to == ["search-ml@example.com"] and notifier.task_kind == pm.CONFIG_ERROR_TASK
    assert "e-mails its team's maintainers" in errors.description


def test_every_family_has_consistent_tags_descriptions_and_range_params():
    plan, dags = _render(CORPUS)
    kinds = {d.kind for d in plan.dags}
    assert {pm.JOIN_BACKFILL, pm.METADATA_UPLOAD, pm.GROUP_BY_UPLOAD, pm.GROUP_BY_BACKFILL, pm.STAGING_QUERY} <= kinds
    family = {pm.JOIN_BACKFILL: "join", pm.METADATA_UPLOAD: "metadata_upload", pm.GROUP_BY_UPLOAD: "group_by",
              pm.GROUP_BY_BACKFILL: "group_by", pm.GROUP_BY_STREAMING: "group_by", pm.STAGING_QUERY: "staging_query",
              pm.CONSISTENCY: "consistency", pm.LOG_FLATTENING: "log_flattening", pm.CONFIG_ERRORS: "config_errors"}
    for d in plan.dags:
        dag = dags[d.dag_id]
        tags = set(dag.tags)
        assert {"chronon", family[d.kind]} <= tags, d.dag_id
        if d.kind != pm.CONFIG_ERRORS:
            assert d.team in tags, d.dag_id
        backends = {t.spec.backend for t in d.tasks if hasattr(t.spec, "backend")}
        backends |= {b for t in d.tasks if t.kind == pm.REGISTER_TEAM_MODEL_TRANSFORMS for b in tags - {
            d.team, "chronon", family[d.kind]}}
        assert tags - {d.team, "chronon", family[d.kind]} == backends, (d.dag_id, tags)
        assert dag.description and len(dag.description) < 250 and " 1 joins" not in dag.description
        # (d) every DAG that computes a range takes start_ds/end_ds and checks it first.
        if d.takes_range:
            assert set(dag.params) == {"start_ds", "end_ds"}, d.dag_id
            roots = [t for t in dag.tasks if not t.upstream_task_ids]
            assert [t.task_id for t in roots] == ["check_range"], d.dag_id
        else:
            assert "check_range" not in dag.task_ids
