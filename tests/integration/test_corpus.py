"""The conformance corpus (tests/corpus/chronon_sample, shaped like upstream's sample repo and
compiled by chronon-ai 0.0.115): everything the compiler writes is accepted, and every dependency
field reaches the sensors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chronon_airflow.config import load_repo
from chronon_airflow.deployment import Deployment
from chronon_airflow.plan import build_plan
from tests.support.paths import CORPUS, DAGS, writable_copy

CLI = str(Path(sys.executable).parent / "chronon-airflow")
JAR = Deployment(engine="jar", chronon_jar="/opt/chronon.jar")


def _compiled_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for kind in ("joins", "group_bys", "staging_queries")
                  for p in (root / "production" / kind).rglob("*") if p.is_file())


def test_validate_accepts_the_whole_corpus():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CHRONON__")}
    out = subprocess.run([CLI, "validate", "--repo", str(CORPUS)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == ""  # no error line at all; warnings go to stderr
    assert f"{len(_compiled_files(CORPUS))} configs ok, 0 errors" in out.stderr


def test_every_compiled_file_loads():
    repo = load_repo(CORPUS)
    assert repo.errors == ()
    loaded = sorted(c.path for c in repo.configs())
    assert loaded == _compiled_files(CORPUS)
    assert repo.staging_queries  # staging queries are loaded too


def test_dependency_fields_reach_the_plan():
    plan = build_plan(load_repo(CORPUS), JAR)
    assert plan.errors == ()
    waits = {(d.dag_id, t.task_id): t.spec.partition for d in plan.dags for t in d.tasks
             if t.kind == "wait_for_partition"}
    by_table = {}
    for p in waits.values():
        by_table.setdefault(p.table, []).append(p)
    # A dt-partitioned source (Query(partition_column="dt")).
    assert {p.column for p in by_table["commerce_raw.orders"]} == {"dt"}
    # A source carrying an /hr=... sub-partition.
    assert {p.subpartitions for p in by_table["growth_raw.account_mutations"]} == {(("hr", "00:00"),)}
    # A table without namespace.
    assert "ads_click_log_base" in by_table
    # A chained GroupBy keeps its own extra dependency beside its parent's output.
    chained = plan.dag("chronon.group_by_upload.qa.chained_playback.chained_v1")
    tables = [t.spec.partition.table for t in chained.tasks if t.kind == "wait_for_partition"]
    assert "qa_raw.account_flags" in tables and "default.qa_parent_feed_parent" in tables
    assert chained.schedule == "asset:default.qa_parent_feed_parent"
    # Schedules: @never is manual only, a cron stays a cron.
    assert plan.dag("chronon.join_backfill.ads.ad_relevance.v1").schedule is None
    assert plan.dag("chronon.join_backfill.qa.playback_embedding.v1").schedule == "30 2 * * *"


def test_lags_and_ends_of_the_corpus_are_parsed():
    repo = load_repo(CORPUS)
    deps = [d for c in repo.configs() for d in c.metadata.dependencies]
    assert any(d.lag_days > 0 for d in deps)
    assert any(d.end == "2023-01-01" for d in deps)


def test_placeholder_online_settings_cost_only_the_streaming_job(tmp_path):
    # Upstream's teams.json ships CHRONON_ONLINE_CLASS = "[ONLINE-TODO]...": the batch DAGs of an
    # online chained GroupBy stay, the streaming DAG stays too and is flagged.
    plan = build_plan(load_repo(CORPUS), JAR)
    ids = {d.dag_id for d in plan.dags}
    name = "growth.session_chain_rollup"
    assert {f"chronon.group_by_upload.{name}", f"chronon.group_by_streaming.{name}"} <= ids
    assert any(w.field == "default.common_env.CHRONON_ONLINE_CLASS" for w in plan.warnings)

    # A value that would read as an option on the driver's command line is refused, for the
    # streaming job alone.
    root = writable_copy(CORPUS, tmp_path / "corpus")
    teams = json.loads((root / "teams.json").read_text())
    teams["default"]["common_env"]["CHRONON_ONLINE_CLASS"] = "--driver-java-options=-Dx"
    (root / "teams.json").write_text(json.dumps(teams))
    plan = build_plan(load_repo(root), JAR)
    ids = {d.dag_id for d in plan.dags}
    assert f"chronon.group_by_upload.{name}" in ids and f"chronon.group_by_streaming.{name}" not in ids
    assert any(e.field == "env CHRONON_ONLINE_CLASS" and "command-line value" in e.message for e in plan.errors)


@pytest.fixture
def corpus_dagbag(monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(CORPUS))
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", "off")
    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_sensors_get_the_column_sub_partitions_and_window(corpus_dagbag):
    assert corpus_dagbag.import_errors == {}
    join = corpus_dagbag.dags["chronon.join_backfill.growth.account_churn_scoring.v1"]
    hr = join.get_task("wait_for_growth_raw.account_mutations_ds")
    assert (hr.table, hr.partition_column, dict(hr.subpartitions), hr.window_start) == \
        ("growth_raw.account_mutations", "ds", {"hr": "00:00"}, "2021-03-01")
    dt = corpus_dagbag.dags["chronon.join_backfill.starter.order_risk.v1"].get_task("wait_for_commerce_raw.orders_dt")
    assert dt.partition_column == "dt" and dt.deferrable
