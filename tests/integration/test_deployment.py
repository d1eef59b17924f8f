"""The plan is a pure function of (repo, deployment): the CLI shows exactly the argv the rendered
operators run, with settings in airflow.cfg (not the environment) and a yarn Spark connection."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chronon_airflow.deployment import Deployment, from_settings, resolve_deployment
from chronon_airflow.spark.job import END_DS, START_DS, SparkConnection
from tests.support.paths import DAGS

YARN = {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "cluster", "queue": "chronon_batch"}}
JOIN_DAG = "chronon.join_backfill.search.query_relevance.v1"
UPLOAD_DAG = "chronon.group_by_upload.search.query_embedding_stats.v1"


def _airflow_cfg(tmp_path: Path, configs_repo: Path) -> Path:
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text(f"""[core]
load_examples = False

[chronon]
repo_path = {configs_repo}
engine = jar
chronon_jar = /opt/chronon/chronon-{{version}}.jar
chronon_version = 0.0.115
plan_cache_dir = off
""")
    return cfg


def _run_hook_argv(op, start: str, end: str) -> list[str]:
    """The command the operator's execute() would run: its own hook, its own arguments."""
    job = op.job.with_dates(start, end)
    op.application_args = list(job.application_args)
    op.env_vars = op._runtime_env()
    return op._get_hook()._build_spark_submit_command(op.application)


def test_cli_plan_shows_the_argv_the_dags_run(tmp_path, configs_repo, monkeypatch):
    cfg = _airflow_cfg(tmp_path, configs_repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CHRONON__")}
    env.update(AIRFLOW_CONFIG=str(cfg), AIRFLOW_CONN_CHRONON_SPARK=json.dumps(YARN))
    out = subprocess.run([str(Path(sys.executable).parent / "chronon-airflow"), "plan", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    shown = {(d["dag_id"], t["task_id"]): t["argv"] for d in json.loads(out.stdout)["dags"]
             for t in d["tasks"] if "argv" in t}
    assert shown[(JOIN_DAG, "raw_join")][:3] == ["spark-submit", "--master", "yarn"]
    assert "/opt/chronon/chronon-0.0.115.jar" in shown[(JOIN_DAG, "raw_join")]

    # The DAG file, in this process, with the same airflow.cfg and connection.
    for k in [k for k in os.environ if k.startswith("AIRFLOW__CHRONON__")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AIRFLOW_CONFIG", str(cfg))
    monkeypatch.setenv("AIRFLOW_CONN_CHRONON_SPARK", json.dumps(YARN))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS), safe_mode=False)
    assert bag.import_errors == {}
    checked = 0
    for (dag_id, task_id), argv in shown.items():
        if dag_id not in (JOIN_DAG, UPLOAD_DAG):
            continue
        op = bag.dags[dag_id].get_task(task_id)
        expected = [{START_DS: "2024-04-01", END_DS: "2024-04-02"}.get(a, a) for a in argv]
        assert _run_hook_argv(op, "2024-04-01", "2024-04-02") == expected, (dag_id, task_id)
        checked += 1
    assert checked == 3  # the raw join, the stats step and the chained upload


def test_settings_come_from_airflow_cfg_whatever_is_imported(tmp_path, configs_repo, monkeypatch):
    cfg = _airflow_cfg(tmp_path, configs_repo)
    for k in [k for k in os.environ if k.startswith("AIRFLOW__CHRONON__")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("AIRFLOW_CONFIG", str(cfg))
    monkeypatch.setenv("AIRFLOW_CONN_CHRONON_SPARK", json.dumps(YARN))
    d = resolve_deployment()
    assert (d.engine, d.chronon_jar, d.chronon_version) == ("jar", "/opt/chronon/chronon-{version}.jar", "0.0.115")
    assert d.spark == SparkConnection(master="yarn", deploy_mode="cluster", queue="chronon_batch")
    # The environment wins over the file, as in Airflow.
    monkeypatch.setenv("AIRFLOW__CHRONON__ENGINE", "local")
    assert resolve_deployment().engine == "local"


def test_missing_connection_is_a_warning_and_the_providers_default():
    d = from_settings({}, None)
    assert d.spark.master == "yarn" and any("not defined" in w for w in d.warnings())
    assert Deployment().fingerprint() == Deployment().fingerprint()
    assert Deployment(engine="jar").fingerprint() != Deployment().fingerprint()
