"""The DAG file over configs/ and the reference repo: ids, tasks, schedules, params, isolation."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.paths import PROJECT_ROOT as PROJECT
from tests.support.paths import writable_copy


def dagbag(monkeypatch, repo: Path, warehouse: Path | None = None):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(repo))
    if warehouse:
        monkeypatch.setenv("AIRFLOW__CHRONON__WAREHOUSE", str(warehouse))
    bag = DagBag(dag_folder=str(PROJECT / "dags"), safe_mode=False)
    return bag


def test_configs_dags(monkeypatch, configs_repo):
    bag = dagbag(monkeypatch, configs_repo)
    assert bag.import_errors == {}
    assert sorted(bag.dags) == [
        "chronon.group_by_backfill.risk.merchant_fraud_stats.v1",
        "chronon.group_by_backfill.search.user_click_affinity.v1",
        "chronon.group_by_streaming.risk.merchant_fraud_stats.v1",
        "chronon.group_by_streaming.risk.user_txn_stats.v1",
        "chronon.group_by_streaming.search.item_clicks.v1",
        "chronon.group_by_streaming.search.query_embedding_stats.v1",
        "chronon.group_by_streaming.search.user_click_affinity.v1",
        "chronon.group_by_upload.risk.merchant_fraud_stats.v1",
        "chronon.group_by_upload.risk.user_txn_stats.v1",
        "chronon.group_by_upload.search.item_clicks.v1",
        "chronon.group_by_upload.search.query_embedding_stats.v1",
        "chronon.group_by_upload.search.user_click_affinity.v1",
        "chronon.join_backfill.risk.txn_fraud.v1",
        "chronon.join_backfill.search.enriched_clicks.v1",
        "chronon.join_backfill.search.plain_join.v1",
        "chronon.join_backfill.search.query_relevance.v1",
        "chronon.join_backfill.search.search_clicks.v1",
        "chronon.metadata_upload.risk",
        "chronon.metadata_upload.search",
        "chronon.staging_query.search.click_events_enriched.v1",
    ]
    join = bag.dags["chronon.join_backfill.search.query_relevance.v1"]
    assert join.timetable.expression == "0 0 * * *"
    assert set(join.params.keys()) == {"start_ds", "end_ds"}
    assert set(join.tags) == {"search", "chronon", "join", "reference"}
    assert join.description.startswith("Chronon join search.query_relevance.v1")
    assert join.default_args["owner"] == "search"
    assert "query_encoder" in join.doc_md and "search_features.search_query_relevance_v1_pre_mt" in join.doc_md
    assert {t.task_id: sorted(t.upstream_task_ids) for t in join.tasks} == {
        "check_range": [],
        "wait_for_search_data.search_events_ds": ["check_range"],
        "wait_for_search_data.item_clicks_ds": ["check_range"],
        "raw_join": ["wait_for_search_data.item_clicks_ds", "wait_for_search_data.search_events_ds"],
        "register_model.query_encoder": ["check_range"],
        "register_model_transform": ["register_model.query_encoder"],
        "wait_for_batch_inference": ["raw_join", "register_model_transform"],
        "stats_summary": ["wait_for_batch_inference"],
    }
    assert type(join.get_task("wait_for_batch_inference")).__name__ == "ModelBatchInferenceOperator"
    # The local engine has no stats-summary: the task skips when it starts, saying why.
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="no stats-summary"):
        join.get_task("stats_summary")._pre_execute_hook({})
    wait = join.get_task("wait_for_batch_inference")
    assert [a.name for a in wait.outlets] == ["search_features.search_query_relevance_v1"]
    sensor = join.get_task("wait_for_search_data.search_events_ds")
    # Deferrable: reschedule mode is what apache/airflow#71172 fails while waiting.
    assert sensor.deferrable is True and sensor.mode != "reschedule"
    for t in join.tasks:  # a fresh notifier per task
        assert len(t.on_failure_callback) == 1
    ids = {id(t.on_failure_callback[0]) for t in join.tasks}
    assert len(ids) == len(join.tasks)

    team = bag.dags["chronon.metadata_upload.risk"]
    assert team.timetable.expression == "*/20 * * * *" and team.max_active_runs == 1 and team.catchup is False

    upload = bag.dags["chronon.group_by_upload.search.query_embedding_stats.v1"]
    assert [a.name for a in upload.timetable.asset_condition.objects] == \
        ["search_features.search_query_relevance_v1"]
    backfill = bag.dags["chronon.group_by_backfill.risk.merchant_fraud_stats.v1"]
    assert [a.name for a in backfill.timetable.asset_condition.objects] == ["risk_features.risk_txn_fraud_v1"]
    assert set(backfill.params.keys()) == {"start_ds", "end_ds"}
    # A plain join updates its output table's Asset itself.
    plain = bag.dags["chronon.join_backfill.search.plain_join.v1"]
    assert [a.name for a in plain.get_task("join").outlets] == ["search_features.search_plain_join_v1"]


def test_reference_dags(monkeypatch, reference_repo):
    bag = dagbag(monkeypatch, reference_repo)
    assert bag.import_errors == {}
    assert "chronon.join_backfill.risk.txn_fraud.v1" in bag.dags
    fraud = bag.dags["chronon.join_backfill.risk.txn_fraud.v1"]
    assert set(fraud.tags) == {"risk", "chronon", "join", "sagemaker", "reference"}
    # Two backends: the first model's backend runs the join-level calls.
    assert fraud.get_task("wait_for_batch_inference").backend == "sagemaker"
    assert "chronon.config_errors" not in bag.dags


def test_broken_file_is_isolated_and_listed(monkeypatch, tmp_path, reference_repo):
    root = writable_copy(reference_repo, tmp_path / "repo")
    bad = root / "production/joins/risk/txn_fraud.v1"
    data = json.loads(bad.read_text())
    data["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackend"] = "a b;rm -rf /"
    bad.write_text(json.dumps(data))
    (root / "production/joins/search/garbage.v1").write_text("{not json")
    bag = dagbag(monkeypatch, root)
    assert bag.import_errors == {}
    assert "chronon.join_backfill.search.query_relevance.v1" in bag.dags
    assert "chronon.join_backfill.risk.txn_fraud.v1" not in bag.dags
    errors = bag.dags["chronon.config_errors"]
    assert "production/joins/risk/txn_fraud.v1" in errors.doc_md
    assert "modelTransforms.transforms[0].model.inferenceSpec.modelBackend" in errors.doc_md
    assert "production/joins/search/garbage.v1" in errors.doc_md
    assert {t.task_id for t in errors.tasks} == {"production_joins_risk_txn_fraud.v1",
                                                "production_joins_search_garbage.v1",
                                                "production_group_bys_risk_merchant_fraud_stats.v1"}


def test_parsing_context_builds_only_the_task_dag(monkeypatch, configs_repo):
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "chronon.metadata_upload.search")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "register_team_model_transforms")
    bag = dagbag(monkeypatch, configs_repo)
    assert list(bag.dags) == ["chronon.metadata_upload.search"]


def test_range_params_validate_dates(monkeypatch, configs_repo):
    from airflow.sdk.definitions.param import ParamValidationError

    bag = dagbag(monkeypatch, configs_repo)
    dag = bag.dags["chronon.join_backfill.search.query_relevance.v1"]
    from airflow.sdk.definitions.param import ParamsDict

    from chronon_airflow.render.dags import range_params

    # The DAG attaches these without Airflow's per-DAG validation: their defaults must be valid.
    ParamsDict(range_params()).validate()
    # Each DAG has its own Param objects: changing one DAG's params changes no other DAG's.
    other = bag.dags["chronon.join_backfill.risk.txn_fraud.v1"]
    assert dag.params.get_param("start_ds") is not other.params.get_param("start_ds")
    param = dag.params.get_param("start_ds")
    assert param.resolve("2024-03-15") == "2024-03-15"
    assert param.resolve(None) is None
    with pytest.raises(ParamValidationError):
        param.resolve("2024-99-01")


def _airflow_dags_list(repo: Path, airflow_home: Path) -> list[str]:
    import os
    import subprocess
    import sys

    env = {**os.environ, "AIRFLOW__CHRONON__REPO_PATH": str(repo), "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags")}
    out = subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "list", "--local", "-o", "json"],
                         capture_output=True, text=True, env=env, check=True)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("["))
    return sorted(d["dag_id"] for d in json.loads(line))


def test_airflow_dags_list_shows_the_families_and_a_broken_file(tmp_path, configs_repo, airflow_db):
    ids = _airflow_dags_list(configs_repo, airflow_db.parent)
    assert {i.split(".")[1] for i in ids} == {"join_backfill", "metadata_upload", "group_by_upload",
                                              "group_by_backfill", "group_by_streaming", "staging_query"}
    root = tmp_path / "configs"
    shutil.copytree(configs_repo, root)
    (root / "production/joins/search/broken.v1").write_text('{"metaData": ')
    broken_ids = _airflow_dags_list(root, airflow_db.parent)
    assert sorted(set(broken_ids) - set(ids)) == ["chronon.config_errors"]
    assert set(ids) <= set(broken_ids)
