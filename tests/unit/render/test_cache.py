"""The parse cache of the DAG file: what it returns equals a fresh render, any input change misses,
and a cache folder someone else could write is never read."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture()
def repo(tmp_path, configs_repo) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(configs_repo, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", str(path))
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    return path


def _serialized(dags: dict) -> dict:
    from airflow.serialization.serialized_objects import DagSerialization

    return {k: json.dumps(DagSerialization.to_dict(d), sort_keys=True, default=str) for k, d in dags.items()}


def test_cached_dags_equal_a_fresh_render(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    first = build_dags(repo)
    (key,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert (key / "full.pickle").exists() and (key / "dags.pickle").exists()
    second = build_dags(repo)
    assert second is not first and all(second[k] is not first[k] for k in first)
    assert _serialized(second) == _serialized(first)
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", "off")
    assert _serialized(build_dags(repo)) == _serialized(first)


def test_a_changed_config_is_a_miss(repo, cache_dir):
    from chronon_airflow.render import build_dags

    dag_id = "chronon.join_backfill.search.query_relevance.v1"
    assert build_dags(repo)[dag_id].timetable.expression == "0 0 * * *"
    f = repo / "production/joins/search/query_relevance.v1"
    data = json.loads(f.read_text())
    data["metaData"]["offlineSchedule"] = "@weekly"
    f.write_text(json.dumps(data))
    assert build_dags(repo)[dag_id].timetable.expression == "0 0 * * 0"
    assert len([p for p in cache_dir.iterdir() if p.is_dir()]) == 2


def test_task_start_parse_builds_only_its_dag_from_the_cache(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    full = build_dags(repo)
    dag_id = "chronon.group_by_upload.search.query_embedding_stats.v1"
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
    one = build_dags(repo)
    assert list(one) == [dag_id]
    assert _serialized(one) == {dag_id: _serialized(full)[dag_id]}


def test_a_folder_others_can_write_is_never_read(repo, cache_dir):
    from chronon_airflow.render import build_dags, cache

    build_dags(repo)
    (key,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    os.chmod(key, 0o777)
    assert cache.load_dags(key.name) is None
    assert cache.load_full(cache.snapshot(repo)) is None


def _keys(cache_dir: Path) -> list[Path]:
    return [p for p in cache_dir.iterdir() if p.is_dir()]


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_task_start_checks_only_the_files_its_dag_is_built_from(repo, cache_dir, monkeypatch):
    """Another config changed: the task start still reads the cached entry (no load, no new key
    folder); its own config changed: it sees the change."""
    from chronon_airflow.render import build_dags

    dag_id = "chronon.join_backfill.search.query_relevance.v1"
    full = build_dags(repo)
    assert len(_keys(cache_dir)) == 1
    _edit(repo / "production/joins/risk/txn_fraud.v1",
          lambda d: d["metaData"].__setitem__("offlineSchedule", "@weekly"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
    assert _serialized(build_dags(repo)) == {dag_id: _serialized(full)[dag_id]}
    assert len(_keys(cache_dir)) == 1  # answered from its own inputs, nothing re-planned

    _edit(repo / "production/joins/search/query_relevance.v1",
          lambda d: d["metaData"].__setitem__("offlineSchedule", "@weekly"))
    assert build_dags(repo)[dag_id].timetable.expression == "0 0 * * 0"
    assert len(_keys(cache_dir)) == 2


def test_task_start_of_a_chained_group_by_sees_its_parent_join_change(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    dag_id = "chronon.group_by_upload.search.query_embedding_stats.v1"
    before = build_dags(repo)[dag_id]
    assert [t.table for t in before.tasks if hasattr(t, "table")] == ["search_features.search_query_relevance_v1"]
    _edit(repo / "production/joins/search/query_relevance.v1",
          lambda d: d["metaData"].__setitem__("outputNamespace", "search_features_v2"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
    after = build_dags(repo)[dag_id]
    # The GroupBy keeps its own compiled dependency and now also waits for the moved parent table.
    assert [t.table for t in after.tasks if hasattr(t, "table")] == ["search_features.search_query_relevance_v1",
                                                                     "search_features_v2.search_query_relevance_v1"]


def test_task_start_sees_teams_json_and_new_joins_of_a_metadata_upload(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    join_dag = "chronon.join_backfill.search.query_relevance.v1"
    upload_dag = "chronon.metadata_upload.search"
    full = build_dags(repo)
    assert full[join_dag].default_args["queue"] == "default"
    _edit(repo / "teams.json", lambda d: d["search"].__setitem__("airflow_queue", "search_queue"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", join_dag)
    assert build_dags(repo)[join_dag].default_args["queue"] == "search_queue"

    # A team's metadata upload lists every join of the team: a new join file is part of its DAG.
    upload = full[upload_dag].get_task("register_team_model_transforms")
    new = repo / "production/joins/search/query_relevance.v2"
    shutil.copy(repo / "production/joins/search/query_relevance.v1", new)
    _edit(new, lambda d: d["metaData"].__setitem__("name", "search.query_relevance.v2"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", upload_dag)
    task = build_dags(repo)[upload_dag].get_task("register_team_model_transforms")
    assert task.join_paths == [*upload.join_paths, "production/joins/search/query_relevance.v2"]


def test_task_start_follows_the_inputs_back_to_an_earlier_cached_state(repo, cache_dir, monkeypatch):
    """A -> B -> A: the full parse at A again hits A's folder without storing anything, and task
    starts are pointed back at it."""
    from chronon_airflow.render import build_dags

    f = repo / "production/joins/search/query_relevance.v1"
    original, st = f.read_bytes(), os.stat(f)
    build_dags(repo)  # A
    (a_key,) = [p.name for p in _keys(cache_dir)]
    (pointer,) = cache_dir.glob("latest-*")
    assert pointer.read_text() == a_key
    _edit(f, lambda d: d["metaData"].__setitem__("offlineSchedule", "@weekly"))
    build_dags(repo)  # B
    assert pointer.read_text() != a_key
    f.write_bytes(original)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    build_dags(repo)  # A again, from A's folder
    assert len(_keys(cache_dir)) == 2 and pointer.read_text() == a_key
    dag_id = "chronon.join_backfill.search.query_relevance.v1"
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
    assert build_dags(repo)[dag_id].timetable.expression == "0 0 * * *"
