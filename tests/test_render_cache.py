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
    assert build_dags(repo)[dag_id].timetable.summary == "0 0 * * *"
    f = repo / "production/joins/search/query_relevance.v1"
    data = json.loads(f.read_text())
    data["metaData"]["offlineSchedule"] = "@weekly"
    f.write_text(json.dumps(data))
    assert build_dags(repo)[dag_id].timetable.summary == "0 0 * * 0"
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
    assert cache.load_full(repo)[1] is None
