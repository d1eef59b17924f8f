"""The "Model backend job" button of ModelBatchJobSensor: the backend's page of the job it waits for.

Airflow 3 computes a link in two places, and this class serves both:

* In the worker, at the end of every try (also when the sensor defers), Airflow calls ``get_link``
  on the links the *operator class* declares and stores the URL in XCom under ``xcom_key``. There
  the operator is the real sensor: its ``backend``/``model_backend_conn_id`` and its rendered
  ``job_id`` give the URL exactly.
* In the API server, the plugin registers this class for the sensor, so the UI's button calls
  ``get_link`` on a deserialized operator that no longer knows its backend. It returns the URL the
  worker stored; when there is none yet (the sensor has not run, or its class does not declare the
  link) it rebuilds it from the ``job_id`` XCom of the upstream submit task and the backend the
  DAG's plan names.

URL: the connection's ``extra.job_url_template`` (``{base_url}`` and ``{job_id}`` are replaced, for
backends whose job page lives elsewhere, or a base URL the browser can reach when Airflow reaches
the backend by an internal host name), else ``<base_url>/modelBackend/jobs/<job_id>``. Only
http(s) URLs are returned and user info is stripped, so neither a hostile config nor a connection
with credentials in its URL can turn the button into a script or leak a password.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from airflow.sdk import BaseOperatorLink

from chronon_airflow import settings

log = logging.getLogger(__name__)

LINK_NAME = "Model backend job"
# XCom key of the job id, pushed by SubmitModelBatchJobOperator (operators/model_backend.py).
JOB_ID_XCOM_KEY = "job_id"
# The submit task of a generated join DAG (plan.model.SUBMIT_BATCH_INFERENCE); tried first.
SUBMIT_TASK_ID = "submit_batch_inference"
LINK_XCOM_KEY = "_link_chronon_model_backend_job"
DEFAULT_JOB_PATH = "/modelBackend/jobs/{job_id}"


def safe_http_url(url: str) -> str:
    """``url`` without user info when it is an absolute http(s) URL, else ``""``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    try:
        port = parts.port
    except ValueError:
        return ""
    if port:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def job_url(conn: Any, job_id: str) -> str:
    """The job page URL for ``job_id`` on the backend behind Airflow connection ``conn``."""
    from chronon_airflow.hooks.model_backend import client_kwargs

    if not job_id:
        return ""
    quoted = quote(str(job_id), safe="")
    template = (conn.extra_dejson or {}).get("job_url_template")
    base_url = client_kwargs(conn)["base_url"].rstrip("/")
    if template:
        # Plain replacement, not str.format: a template is connection data, not code.
        url = str(template).replace("{base_url}", base_url).replace("{job_id}", quoted)
    else:
        url = base_url + DEFAULT_JOB_PATH.replace("{job_id}", quoted)
    return safe_http_url(url)


class ModelBackendJobLink(BaseOperatorLink):
    """Declared on ModelBatchJobSensor (``operator_extra_links``) and registered by the plugin."""

    name = LINK_NAME

    @property
    def xcom_key(self) -> str:
        # Fixed, not derived from the class name: the worker (the sensor's own declaration) and the
        # API server (the plugin's subclass) must read and write the same key.
        return LINK_XCOM_KEY

    # Airflow matches plugin links to operators through this list; the plugin fills it with the
    # sensor class, so this module never imports the sensor (which may import this module).
    operators: list[type] = []

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            if getattr(operator, "backend", None) or getattr(operator, "model_backend_conn_id", None):
                return self._link_in_worker(operator, ti_key)
            return self._link_in_api_server(operator, ti_key)
        except Exception:  # a broken link must never break the task or the task page
            log.exception("cannot build the %r link of %s", self.name, ti_key)
            return ""

    # -- worker: the real sensor -------------------------------------------------------------
    def _link_in_worker(self, operator: Any, ti_key: Any) -> str:
        from chronon_airflow.hooks.model_backend import ModelBackendHook

        job_id = operator.job_id
        if not isinstance(job_id, str) or "{{" in job_id:
            # Not rendered (e.g. an XComArg before execute): ask the submit task directly.
            job_id = ti_key.xcom_pull(task_ids=list(operator.upstream_task_ids), key=JOB_ID_XCOM_KEY)
            if isinstance(job_id, list):
                job_id = next((j for j in job_id if j), None)
        if not job_id:
            return ""
        hook = ModelBackendHook(operator.backend, operator.model_backend_conn_id)
        return job_url(hook.get_connection(hook.model_backend_conn_id), str(job_id))

    # -- API server: a deserialized operator ---------------------------------------------------
    def _link_in_api_server(self, operator: Any, ti_key: Any) -> str:
        stored = _xcom_str(self.name, self.xcom_key, ti_key)
        if stored:
            return safe_http_url(stored)
        job_id = self._upstream_job_id(operator, ti_key)
        if not job_id:
            return ""
        backend = _planned_backend(ti_key.dag_id)
        if not backend:
            return ""
        from airflow.models.connection import Connection

        conn = Connection.get_connection_from_secrets(settings.backend_conn_id(backend))
        return job_url(conn, job_id)

    @staticmethod
    def _upstream_job_id(operator: Any, ti_key: Any) -> str:
        from airflow.models.taskinstancekey import TaskInstanceKey

        upstream = sorted(getattr(operator, "upstream_task_ids", ()) or (),
                          key=lambda t: t != SUBMIT_TASK_ID)
        for task_id in upstream:
            key = TaskInstanceKey(ti_key.dag_id, task_id, ti_key.run_id, ti_key.try_number, -1)
            value = _xcom_str("job id", JOB_ID_XCOM_KEY, key)
            if value:
                return value
        return ""


def _xcom_str(name: str, xcom_key: str, ti_key: Any) -> str:
    """A stored XCom as a string, read the way Airflow reads stored links (no unpickling)."""
    from airflow.serialization.definitions.operatorlink import XComOperatorLink

    return XComOperatorLink(name=name, xcom_key=xcom_key).get_link(None, ti_key=ti_key) or ""


def _planned_backend(dag_id: str) -> str:
    """The model backend of a generated join DAG, from the configured repo's plan ("" if unknown
    or ambiguous: a join mixing backends names its batch backend only in the DAG code)."""
    from chronon_airflow.render import planned_dag

    dag = planned_dag(dag_id)
    if dag is None:
        return ""
    submit = next((t for t in dag.tasks if t.kind == "submit_batch_inference"), None)
    return submit.spec.backend if submit is not None else ""
