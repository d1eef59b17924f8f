"""The streaming keeper: skipped on the local engine; with the jar it asks YARN before submitting."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from chronon_airflow.config import load_repo  # noqa: E402
from chronon_airflow.spark.job import build_spark_job  # noqa: E402
from tests.support.net import free_port  # noqa: E402

GB = "search.query_embedding_stats.v1"


def _job(repo, engine):
    gb = repo.group_bys[GB]
    return build_spark_job(gb.thrift(), str(Path(repo.root) / gb.path), "streaming", repo.teams_json,
                           conf_type="group_bys", engine=engine, chronon_jar="/opt/chronon/chronon.jar")


def test_local_engine_skips_with_a_reason(configs_repo):
    from airflow.sdk.exceptions import AirflowSkipException

    from chronon_airflow.operators.streaming_keeper import ChrononStreamingKeeperOperator

    op = ChrononStreamingKeeperOperator(task_id="keep", job=_job(load_repo(configs_repo), "local"))
    with pytest.raises(AirflowSkipException, match="local engine has no streaming"):
        op.execute({})


class _ResourceManager(BaseHTTPRequestHandler):
    """Answers the YARN ResourceManager's apps query as a real RM does (ws/v1/cluster/apps)."""

    apps: list = []
    queries: list = []

    def do_GET(self):  # noqa: N802
        type(self).queries.append(self.path)
        body = json.dumps({"apps": {"app": type(self).apps} if type(self).apps else None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_jar_engine_leaves_a_running_job_alone(configs_repo, monkeypatch):
    from chronon_airflow.operators.streaming_keeper import ChrononStreamingKeeperOperator

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _ResourceManager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        job = _job(load_repo(configs_repo), "jar")
        _ResourceManager.apps = [{"id": "application_1_0007", "name": job.name, "state": "RUNNING"}]
        monkeypatch.setenv("AIRFLOW_CONN_CHRONON_SPARK", json.dumps(
            {"conn_type": "spark", "host": "yarn",
             "extra": {"deploy-mode": "cluster", "yarn_resourcemanager_webapp_address": f"127.0.0.1:{port}"}}))
        op = ChrononStreamingKeeperOperator(task_id="keep", job=job)
        assert op.execute({}) == "application_1_0007"
        assert "states=NEW%2CNEW_SAVING%2CSUBMITTED%2CACCEPTED%2CRUNNING" in _ResourceManager.queries[-1]
        assert op.conf["spark.yarn.submit.waitAppCompletion"] == "false"
        _ResourceManager.apps = [{"id": "application_1_0001", "name": "someone_else", "state": "RUNNING"}]
        assert op.running_application() is None
    finally:
        server.shutdown()
