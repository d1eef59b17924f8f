"""Every Chronon DAG family: on the conformance corpus (shaped like upstream's sample repo), every
task upstream Chronon's Airflow helpers would schedule has its counterpart here, and every Asset a
DAG is scheduled on is updated by some DAG."""
from __future__ import annotations

import pytest

from chronon_airflow.deployment import Deployment
from chronon_airflow.plan import load_plan
from chronon_airflow.plan import model as pm
from tests.corpus.upstream_rules import upstream_schedule
from tests.support.paths import CORPUS

JAR = Deployment(engine="jar", chronon_jar="/opt/chronon.jar")

# upstream (conf_type, mode) -> (our DAG kind, the task kind that does the work)
MAPPING = {
    ("joins", "backfill"): (pm.JOIN_BACKFILL, {pm.JOIN, pm.RAW_JOIN}),
    ("joins", "stats-summary"): (pm.JOIN_BACKFILL, {pm.STATS_SUMMARY}),
    ("joins", "consistency-metrics-compute"): (pm.CONSISTENCY, {pm.CONSISTENCY_METRICS}),
    ("joins", "log-flattener"): (pm.LOG_FLATTENING, {pm.LOG_FLATTENER}),
    ("group_bys", "upload"): (pm.GROUP_BY_UPLOAD, {pm.GROUP_BY_UPLOAD_TASK}),
    ("group_bys", "backfill"): (pm.GROUP_BY_BACKFILL, {pm.GROUP_BY_BACKFILL_TASK}),
    ("group_bys", "streaming"): (pm.GROUP_BY_STREAMING, {pm.GROUP_BY_STREAMING_TASK}),
    ("staging_queries", "backfill"): (pm.STAGING_QUERY, {pm.STAGING_QUERY_TASK}),
}


@pytest.fixture(scope="module")
def plan():
    _repo, plan = load_plan(CORPUS, JAR)
    assert plan.errors == ()
    return plan


def test_every_task_upstream_would_schedule_has_its_counterpart(plan):
    dags = {d.dag_id: d for d in plan.dags}
    rows = upstream_schedule(str(CORPUS))
    assert len(rows) > 100  # the corpus exercises every mode
    missing = []
    for row in rows:
        if row["mode"] == "metadata-upload":
            # Upstream: one chronon_metadata_upload DAG; here each team's upload DAG runs Chronon's
            # metadata-upload over the team's joins.
            team = row["name"].split(".")[0]
            d = dags.get(f"chronon.metadata_upload.{team}")
            ok = d is not None and row["name"] in d.members and any(t.kind == pm.METADATA_UPLOAD_TASK for t in d.tasks)
        else:
            kind, task_kinds = MAPPING[(row["conf_type"], row["mode"])]
            d = dags.get(f"chronon.{kind}.{row['name']}")
            ok = d is not None and any(t.kind in task_kinds for t in d.tasks)
        if not ok:
            missing.append((row["conf_type"], row["mode"], row["name"]))
    assert missing == []


def test_what_we_add_beyond_upstream_is_the_documented_extras(plan):
    rows = upstream_schedule(str(CORPUS))
    scheduled = {(r["conf_type"], r["mode"], r["name"]) for r in rows}
    extras = []
    for d in plan.dags:
        if d.kind == pm.JOIN_BACKFILL and ("joins", "backfill", d.conf_name) not in scheduled:
            assert d.schedule is None  # an @never join: upstream has no DAG, ours is manual only
            extras.append(("manual join", d.conf_name))
        if d.kind == pm.GROUP_BY_STREAMING and ("group_bys", "streaming", d.conf_name) not in scheduled:
            # Upstream reads accuracy from metaData, where it never is: a TEMPORAL online GroupBy
            # without a topic of its own gets no streaming job there.
            extras.append(("temporal streaming", d.conf_name))
    kinds = {(k, n) for k, n in extras}
    assert {k for k, _ in kinds} <= {"manual join", "temporal streaming"}
    assert ("manual join", "ads.ad_relevance.v1") in kinds  # the @never model-transform join


def test_every_asset_a_dag_is_scheduled_on_is_updated_by_a_dag(plan):
    updated = set()
    for d in plan.dags:
        for t in d.tasks:
            updated.update(getattr(t.spec, "updates", ()))
            if isinstance(t.spec, pm.WaitForBatchInference):
                updated.add(t.spec.output_table)
    scheduled = {d.schedule[len("asset:"):]: d.dag_id for d in plan.dags if (d.schedule or "").startswith("asset:")}
    assert scheduled, "the corpus has chained GroupBys"
    assert {t: dag for t, dag in scheduled.items() if t not in updated} == {}


def test_join_dag_steps(plan):
    dags = {d.dag_id: d for d in plan.dags}
    label = dags["chronon.join_backfill.growth.session_labels.v1"]
    steps = {t.task_id: t for t in label.tasks}
    assert steps["label_join"].upstream[0] == "join"  # after the join's output lands
    assert "stats_summary" in steps
    never = dags["chronon.join_backfill.ads.ad_relevance.v1"]
    assert never.schedule is None and "stats_summary" not in {t.task_id for t in never.tasks}
    team = dags["chronon.metadata_upload.starter"]
    upload = team.task("metadata_upload")
    assert upload.spec.job.subcommand == "metadata-upload"
    assert upload.spec.job.application_args[:3] == ["metadata-upload", "--conf-path",
                                                    str(CORPUS.resolve() / "production" / "joins" / "starter")]
    flattening = next(d for d in plan.dags if d.kind == pm.LOG_FLATTENING)
    args = flattening.task("log_flattener").spec.job.application_args
    assert args[args.index("--log-table") + 1] == "chronon_logs.online_requests"
    raw_log = next(t for t in flattening.tasks if t.kind == pm.WAIT_FOR_PARTITION and
                   t.spec.partition.table == "chronon_logs.online_requests")
    assert raw_log.spec.partition.subpartitions == (("name", "SCHEMA_PUBLISH_EVENT"),)
