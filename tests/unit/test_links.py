"""The "Model backend job" extra link: a provider part that builds its URL from XCom only."""
from __future__ import annotations

import json

import pytest

from chronon_airflow.links import model_backend as links
from tests.support.xcom import RecordingTI

CONN_PASSWORD = "conn-PASSWORD-9191"
SUBMIT, WAIT = "submit_batch_inference", "wait_for_batch_inference"


def _conn(**kw):
    from airflow.models.connection import Connection

    return Connection(conn_id="chronon_backend_reference", conn_type="chronon_model_backend", **kw)


@pytest.fixture
def backend_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE", json.dumps(
        {"conn_type": "chronon_model_backend", "host": "backend.internal", "port": 8765, "schema": "http",
         "password": CONN_PASSWORD}))


@pytest.fixture(autouse=True)
def no_repo(monkeypatch):
    """The link never loads the Chronon repo (nor plans it), in the worker or the API server."""
    def refuse(*args, **kwargs):
        raise AssertionError("the job link loaded the repo")

    monkeypatch.setattr("chronon_airflow.config.loader.load_repo", refuse)
    monkeypatch.setattr("chronon_airflow.plan.load.load_plan", refuse)


class Deserialized:
    """What the API server has: no backend, no rendered job id; its task ids."""

    def __init__(self, upstream=(SUBMIT,)):
        self.upstream_task_ids = set(upstream)


def test_job_url_from_connection():
    conn = _conn(host="backend.internal", port=8765, schema="http", password=CONN_PASSWORD)
    assert links.job_url(conn, "job 1/2") == "http://backend.internal:8765/modelBackend/jobs/job%201%2F2"
    conn = _conn(host="x", extra=json.dumps({"base_url": "https://user:pw@models.example/api"}))
    assert links.job_url(conn, "j1") == "https://models.example/api/modelBackend/jobs/j1"  # no user info
    conn = _conn(host="chronon-backend", port=8765,
                 extra=json.dumps({"job_url_template": "http://localhost:8765/ui/{job_id}?b={base_url}"}))
    assert links.job_url(conn, "j1") == "http://localhost:8765/ui/j1?b=http://chronon-backend:8765"
    for hostile in ("javascript:alert(1)//{job_id}", "{job_id.__class__}", "data:text/html,{job_id}"):
        assert links.job_url(_conn(host="h", extra=json.dumps({"job_url_template": hostile})), "j1") == ""
    assert links.job_url(_conn(host="h", port=1), "") == ""


def test_the_submit_task_pushes_the_pieces_never_a_secret(backend_conn):
    xcoms: dict = {}
    links.push_job(RecordingTI(SUBMIT, xcoms), "job-42", "chronon_backend_reference")
    assert xcoms == {(SUBMIT, "job_id"): "job-42", (SUBMIT, "model_backend_conn_id"): "chronon_backend_reference",
                     (SUBMIT, "model_backend_job_url"): "http://backend.internal:8765/modelBackend/jobs/job-42"}
    assert CONN_PASSWORD not in json.dumps(list(xcoms.values()))


def test_a_connection_without_a_url_leaves_the_link_empty_not_the_submit_failed(monkeypatch):
    xcoms: dict = {}
    links.push_job(RecordingTI(SUBMIT, xcoms), "job-42", "chronon_backend_nowhere")  # no such connection
    assert xcoms[(SUBMIT, "job_id")] == "job-42" and xcoms[(SUBMIT, "model_backend_job_url")] == ""


def test_worker_reads_the_upstream_submit_task_or_the_task_itself(backend_conn):
    from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

    link = links.ModelBackendJobLink()
    sensor = ModelBatchJobSensor(task_id=WAIT, job_id="{{ ti.xcom_pull(task_ids='submit_batch_inference') }}",
                                 start_ds="2024-01-01", end_ds="2024-01-01", backend="reference")
    xcoms: dict = {}
    assert link.get_link(sensor, ti_key=RecordingTI(WAIT, xcoms)) == ""  # nothing submitted, job id not rendered
    links.push_job(RecordingTI(SUBMIT, xcoms), "job-7", "chronon_backend_reference")
    sensor.upstream_task_ids.add(SUBMIT)
    assert link.get_link(sensor, ti_key=RecordingTI(WAIT, xcoms)) == "http://backend.internal:8765/modelBackend/jobs/job-7"

    # One task that submits and waits pushes on itself.
    own: dict = {}
    links.push_job(RecordingTI(WAIT, own), "job-8", "chronon_backend_reference")
    assert link.get_link(Deserialized(upstream=()), ti_key=RecordingTI(WAIT, own)).endswith("/jobs/job-8")

    # A sensor fed its job id by other means: its rendered job id and backend.
    sensor = ModelBatchJobSensor(task_id=WAIT, job_id="job-9", start_ds="2024-01-01", end_ds="2024-01-01",
                                 backend="reference")
    assert link.get_link(sensor, ti_key=RecordingTI(WAIT, {})) == "http://backend.internal:8765/modelBackend/jobs/job-9"
    assert link.xcom_key == links.LINK_XCOM_KEY


def test_api_server_prefers_the_stored_url_then_the_xcom(monkeypatch, backend_conn):
    from airflow.models.taskinstancekey import TaskInstanceKey

    stored: dict[tuple[str, str], str] = {}
    monkeypatch.setattr(links, "_stored_xcom", lambda ti_key, task_id, key: stored.get((task_id, key), ""))
    key = TaskInstanceKey("chronon.join_backfill.search.query_relevance.v1", WAIT, "r1", 1, -1)
    link = links.ModelBackendJobLink()

    assert link.get_link(Deserialized(), ti_key=key) == ""  # nothing submitted yet
    # Only the job id and the connection id (a submit task that could not build the URL): rebuilt.
    stored[(SUBMIT, "job_id")] = "job-7"
    stored[(SUBMIT, "model_backend_conn_id")] = "chronon_backend_reference"
    assert link.get_link(Deserialized(), ti_key=key) == "http://backend.internal:8765/modelBackend/jobs/job-7"
    stored[(SUBMIT, "model_backend_job_url")] = "https://user:pw@jobs.example/j/job-7"
    assert link.get_link(Deserialized(), ti_key=key) == "https://jobs.example/j/job-7"
    stored[(WAIT, links.LINK_XCOM_KEY)] = "http://stored.example/jobs/job-7"
    assert link.get_link(Deserialized(), ti_key=key) == "http://stored.example/jobs/job-7"
    stored[(WAIT, links.LINK_XCOM_KEY)] = "javascript:alert(1)"
    assert link.get_link(Deserialized(), ti_key=key) == ""


def test_a_broken_lookup_never_breaks_the_page(monkeypatch):
    from airflow.models.taskinstancekey import TaskInstanceKey

    def boom(*args):
        raise RuntimeError("no database")

    monkeypatch.setattr(links, "_stored_xcom", boom)
    key = TaskInstanceKey("d", WAIT, "r1", 1, -1)
    assert links.ModelBackendJobLink().get_link(Deserialized(), ti_key=key) == ""


def test_provider_declares_the_link_and_the_notifier():
    import importlib

    from chronon_airflow.provider import get_provider_info

    info = get_provider_info()
    assert info["extra-links"] == ["chronon_airflow.links.model_backend.ModelBackendJobLink",
                                   "chronon_airflow.links.spark.SparkApplicationLink"]
    assert info["notifications"] == ["chronon_airflow.notifications.failure.ChrononFailureNotifier"]
    for path in info["extra-links"] + info["notifications"]:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type)


def test_the_plugin_binds_the_link_to_every_operator_declaring_it():
    from chronon_airflow.plugin import operator_links
    from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

    (bound,) = operator_links.api_server_links()
    assert isinstance(bound, links.ModelBackendJobLink) and bound.xcom_key == links.LINK_XCOM_KEY
    assert ModelBatchJobSensor in bound.operators
    assert links.ModelBackendJobLink.operators == []  # the provider's class itself stays unbound
    for cls in bound.operators:
        assert any(isinstance(link, links.ModelBackendJobLink) for link in cls.operator_extra_links)
