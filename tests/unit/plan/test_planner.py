"""The plan layer (pure) and the CLI's JSON contract."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chronon_airflow.config import load_repo
from chronon_airflow.plan import build_plan
from tests.support.paths import writable_copy

CLI = [str(Path(sys.executable).parent / "chronon-airflow")]


def test_reference_plan_has_the_right_dags(reference_repo):
    plan = build_plan(load_repo(reference_repo))
    kinds = {d.dag_id: d.kind for d in plan.dags}
    assert kinds == {
        "chronon.join_backfill.risk.txn_fraud.v1": "join_backfill",
        "chronon.join_backfill.search.query_relevance.v1": "join_backfill",
        "chronon.metadata_upload.risk": "metadata_upload",
        "chronon.metadata_upload.search": "metadata_upload",
        "chronon.group_by_upload.risk.merchant_fraud_stats.v1": "group_by_upload",
        "chronon.group_by_upload.search.query_embedding_stats.v1": "group_by_upload",
        "chronon.group_by_streaming.risk.merchant_fraud_stats.v1": "group_by_streaming",
        "chronon.group_by_streaming.search.query_embedding_stats.v1": "group_by_streaming",
        # Every join and GroupBy has its DAGs, not only the model-transform ones.
        "chronon.join_backfill.search.plain_join.v1": "join_backfill",
        "chronon.group_by_upload.risk.user_txn_stats.v1": "group_by_upload",
        "chronon.group_by_streaming.risk.user_txn_stats.v1": "group_by_streaming",
        "chronon.group_by_upload.search.item_clicks.v1": "group_by_upload",
        "chronon.group_by_streaming.search.item_clicks.v1": "group_by_streaming",
    }


def test_plain_join_writes_its_output_and_updates_its_asset(reference_repo):
    d = build_plan(load_repo(reference_repo)).dag("chronon.join_backfill.search.plain_join.v1")
    join = d.task("join")
    assert join.kind == "join" and join.writes == ("search_features.search_plain_join_v1",)
    assert join.spec.updates == ("search_features.search_plain_join_v1",)
    assert d.task("stats_summary").upstream == ("join",)
    # The local engine has no stats-summary: the step skips, saying why; the join runs.
    assert "local engine has no stats-summary" in d.task("stats_summary").skip_reason
    assert join.skip_reason is None


def test_join_dag_tasks_and_tables(reference_repo):
    plan = build_plan(load_repo(reference_repo))
    d = plan.dag("chronon.join_backfill.risk.txn_fraud.v1")
    assert (d.team, d.schedule, d.source) == ("risk", "@daily", "production/joins/risk/txn_fraud.v1")
    tasks = {t.task_id: (t.kind, set(t.upstream)) for t in d.tasks}
    assert tasks == {
        # First, the range check every root task waits for (a bad range touches neither backend nor Spark).
        "check_range": ("check_range", set()),
        "wait_for_payments.card_transactions_ds": ("wait_for_partition", {"check_range"}),
        "raw_join": ("raw_join", {"wait_for_payments.card_transactions_ds"}),
        "register_model.fraud_scorer": ("register_model", {"check_range"}),
        "register_model.merchant_embedder": ("register_model", {"check_range"}),
        "register_model_transform": ("register_model_transform",
                                     {"register_model.fraud_scorer", "register_model.merchant_embedder"}),
        # Submit and wait are one task: its retry submits again.
        "wait_for_batch_inference": ("wait_for_batch_inference", {"raw_join", "register_model_transform"}),
        "stats_summary": ("stats_summary", {"wait_for_batch_inference"}),
    }
    batch = d.task("wait_for_batch_inference")
    assert batch.reads == ("risk_features.risk_txn_fraud_v1_pre_mt",)
    assert batch.writes == ("risk_features.risk_txn_fraud_v1",)
    assert d.reads == ("payments.card_transactions",)
    assert d.writes == ("risk_features.risk_txn_fraud_v1_pre_mt", "risk_features.risk_txn_fraud_v1",
                        "risk_features.risk_txn_fraud_v1_daily_stats")
    assert d.owners == ("risk-ml@example.com",) and d.queue == "risk_batch" and d.start_date == "2024-03-15"
    assert set(d.tags) == {"risk", "chronon", "join", "sagemaker", "reference"}


def test_chained_group_by_reads_parent_output(reference_repo):
    plan = build_plan(load_repo(reference_repo))
    d = plan.dag("chronon.group_by_upload.search.query_embedding_stats.v1")
    assert d.schedule == "asset:search_features.search_query_relevance_v1"
    assert d.reads == ("search_features.search_query_relevance_v1",)
    assert d.writes == ("search_features.search_query_embedding_stats_v1_upload",)
    assert [t.kind for t in d.tasks] == ["check_range", "wait_for_partition", "group_by_upload"]
    team = plan.dag("chronon.metadata_upload.search")
    assert team.schedule == "*/20 * * * *" and team.source == "teams.json"
    assert team.members == ("search.plain_join.v1", "search.query_relevance.v1")
    assert [t.kind for t in team.tasks] == ["metadata_upload", "register_team_model_transforms"]
    assert team.task("register_team_model_transforms").spec.join_names == ("search.query_relevance.v1",)


def test_configs_plan_covers_every_family(configs_repo):
    plan = build_plan(load_repo(configs_repo))
    assert plan.errors == ()
    kinds = sorted({d.kind for d in plan.dags})
    assert kinds == ["group_by_backfill", "group_by_streaming", "group_by_upload", "join_backfill", "metadata_upload",
                     "staging_query"]
    sq = plan.dag("chronon.staging_query.search.click_events_enriched.v1")
    assert sq.task("staging_query").spec.updates == ("search_features.search_click_events_enriched_v1",)
    assert [t.spec.partition.table for t in sq.tasks if t.kind == "wait_for_partition"] == \
        ["search_data.item_clicks", "search_data.items_snapshot"]
    # A join reading the staging query's output waits for it.
    enriched = plan.dag("chronon.join_backfill.search.enriched_clicks.v1")
    assert "search_features.search_click_events_enriched_v1" in enriched.reads
    # A chained GroupBy's backfill runs when its parent's output lands, like its upload.
    backfill = plan.dag("chronon.group_by_backfill.risk.merchant_fraud_stats.v1")
    assert backfill.schedule == "asset:risk_features.risk_txn_fraud_v1"
    assert backfill.writes == ("risk_features.risk_merchant_fraud_stats_v1",)


def test_never_schedule_is_manual(tmp_path, reference_repo):
    root = writable_copy(reference_repo, tmp_path / "r")
    f = root / "production/joins/search/query_relevance.v1"
    data = json.loads(f.read_text())
    data["metaData"]["offlineSchedule"] = "@never"
    f.write_text(json.dumps(data))
    assert build_plan(load_repo(root)).dag("chronon.join_backfill.search.query_relevance.v1").schedule is None


def _run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=env)


def test_cli_json_contract(reference_repo):
    out = _run("plan", "--json", "--repo", str(reference_repo))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"dags", "errors", "warnings"} and doc["errors"] == []
    for d in doc["dags"]:
        assert set(d) == {"dag_id", "kind", "team", "schedule", "source", "tasks", "reads", "writes", "queue",
                          "owners", "start_date", "tags"}
        assert d["kind"] in {"join_backfill", "metadata_upload", "group_by_upload", "group_by_backfill",
                             "group_by_streaming"}
        for t in d["tasks"]:
            assert {"task_id", "kind", "upstream"} <= set(t)
            assert all(u in {x["task_id"] for x in d["tasks"]} for u in t["upstream"])
        assert all("." in table for table in d["reads"] + d["writes"])
    join = next(d for d in doc["dags"] if d["dag_id"] == "chronon.join_backfill.search.query_relevance.v1")
    kinds = [t["kind"] for t in join["tasks"]]
    assert kinds.count("wait_for_partition") == 2 and kinds.count("register_model") == 1
    assert {"check_range", "raw_join", "register_model_transform", "wait_for_batch_inference"} <= set(kinds)
    assert "submit_batch_inference" not in kinds


def test_cli_broken_file_exit_1_and_rest_still_planned(tmp_path, reference_repo):
    root = writable_copy(reference_repo, tmp_path / "r")
    (root / "production/joins/risk/txn_fraud.v1").write_text('{"metaData": {"name": "risk.txn_fraud.v1"')
    out = _run("plan", "--json", "--repo", str(root))
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    where = [(e["path"], e["field"]) for e in doc["errors"]]
    assert ("production/joins/risk/txn_fraud.v1", "") in where
    assert all(e["message"] for e in doc["errors"])
    assert "chronon.join_backfill.search.query_relevance.v1" in [d["dag_id"] for d in doc["dags"]]
    val = _run("validate", "--repo", str(root))
    assert val.returncode == 1
    assert val.stdout.splitlines()[0].startswith("production/group_bys/risk/merchant_fraud_stats.v1: sources[0]")
    assert "production/joins/risk/txn_fraud.v1: <file>: invalid JSON" in val.stdout


def test_cli_default_repo_and_usage_errors(configs_repo):
    out = _run("plan", "--json", env_extra={"CHRONON_REPO_PATH": str(configs_repo)})
    assert out.returncode == 0 and json.loads(out.stdout)["dags"]
    assert _run("plan", "--repo", "/does/not/exist").returncode == 2
    assert _run("no-such-command").returncode == 2


def test_validate_warns_for_backends_without_connection(reference_repo):
    out = _run("validate", "--repo", str(reference_repo),
               env_extra={"AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE": "http://127.0.0.1:1"})
    assert out.returncode == 0
    assert "model backend 'sagemaker' has no Airflow connection 'chronon_backend_sagemaker'" in out.stderr
    assert "'reference'" not in out.stderr
