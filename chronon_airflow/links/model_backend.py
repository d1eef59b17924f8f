"""The "Model backend job" button: the model backend's page of the batch job a task submitted or waits for.

Built from XCom only, never from the Chronon repo. The task that submits the job calls
:func:`push_job`, which pushes (none of it a secret):

* ``job_id`` — the job id;
* ``model_backend_conn_id`` — the Airflow connection id of the backend that runs the job;
* ``model_backend_job_url`` — the job page, built from that connection when the job was submitted.

The link reads them from the task itself first, then from its upstream tasks (a
``submit_batch_inference`` task first), so it serves one task that submits and waits (the generated
join DAG's ``wait_for_batch_inference``) as well as a wait task downstream of a submit task. With the
URL missing it builds one from the job id and the connection id.

Airflow computes a link in two places, and this class serves both:

* in the worker, at the end of every try (also when the task defers), for the links the *operator
  class* declares (``operator_extra_links``); Airflow stores the URL in XCom under ``xcom_key``. A
  task fed a job id by other means (its rendered ``job_id`` with ``backend`` or
  ``model_backend_conn_id``) gets its URL from those as a last resort;
* in the API server, on a deserialized operator: Airflow shows the stored URL. The plugin also
  registers this class for the operators that declare it (:mod:`chronon_airflow.plugin.operator_links`),
  so the button works before the first try ended: stored URL first, then the XCom above.

URL: the connection's ``extra.job_url_template`` (``{base_url}`` and ``{job_id}`` are replaced; for
backends whose job page lives elsewhere, or a base URL the browser can reach when Airflow reaches
the backend by an internal host name), else ``<base_url>/modelBackend/jobs/<job_id>``. Only http(s)
URLs are returned and user info is stripped, so neither a hostile config nor a connection with
credentials in its URL can turn the button into a script or leak a password.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

LINK_NAME = "Model backend job"
# Where Airflow stores the URL the worker computed. Fixed, not derived from the class name: the
# worker (the operator's own declaration) and the API server (the plugin's subclass) share it.
LINK_XCOM_KEY = "_link_chronon_model_backend_job"
JOB_ID_XCOM_KEY = "job_id"
CONN_ID_XCOM_KEY = "model_backend_conn_id"
JOB_URL_XCOM_KEY = "model_backend_job_url"
DEFAULT_JOB_PATH = "/modelBackend/jobs/{job_id}"
# The upstream task tried first: a separate submit task (hand-wired DAGs, DAGs rendered before submit
# and wait became one task).
SUBMIT_TASK_ID = "submit_batch_inference"


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


def push_job(ti: Any, job_id: str, conn_id: str) -> None:
    """Push what the link needs, from the task that submitted ``job_id`` to the backend behind
    connection ``conn_id``. A connection the URL cannot be built from only leaves the URL empty."""
    url = ""
    try:
        from airflow.sdk import BaseHook

        url = job_url(BaseHook.get_connection(conn_id), job_id)
    except Exception as e:  # the link is a convenience: it never fails the submission
        log.warning("no %r link for job %s: %s", LINK_NAME, job_id, e)
    ti.xcom_push(key=JOB_ID_XCOM_KEY, value=job_id)
    ti.xcom_push(key=CONN_ID_XCOM_KEY, value=conn_id)
    ti.xcom_push(key=JOB_URL_XCOM_KEY, value=url)


class ModelBackendJobLink(BaseOperatorLink):
    """Declared by the operators that submit or wait for a model batch job (``operator_extra_links``)."""

    name = LINK_NAME

    # Airflow matches plugin links to operators through this list; the plugin fills it in a subclass
    # (chronon_airflow.plugin.operator_links), so this module imports no operator.
    operators: ClassVar[list[type[BaseOperator]]] = []

    @property
    def xcom_key(self) -> str:
        return LINK_XCOM_KEY

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            if hasattr(ti_key, "xcom_pull"):  # the worker: a live task instance
                return self._link_in_worker(operator, ti_key)
            return self._link_in_api_server(operator, ti_key)
        except Exception:  # a broken link must never break the task or the task page
            log.exception("cannot build the %r link of %s", self.name, ti_key)
            return ""

    def _link_in_worker(self, operator: Any, ti: Any) -> str:
        def pull(task_id: str, key: str) -> Any:
            return ti.xcom_pull(task_ids=task_id, key=key)

        url = _from_xcom(operator, ti.task_id, pull, in_worker=True)
        if url:
            return url
        # A task fed its job id by other means: its own rendered job id and backend.
        job_id, backend = getattr(operator, "job_id", None), getattr(operator, "backend", None)
        conn_id = getattr(operator, "model_backend_conn_id", None)
        if not isinstance(job_id, str) or not job_id or "{{" in job_id or not (backend or conn_id):
            return ""
        from chronon_airflow.hooks.model_backend import ModelBackendHook

        hook = ModelBackendHook(backend, conn_id)
        return job_url(hook.get_connection(hook.model_backend_conn_id), job_id)

    def _link_in_api_server(self, operator: Any, ti_key: Any) -> str:
        stored = _stored_xcom(ti_key, ti_key.task_id, self.xcom_key)
        if stored:
            return safe_http_url(stored)
        return _from_xcom(operator, ti_key.task_id, lambda task_id, key: _stored_xcom(ti_key, task_id, key),
                          in_worker=False)


def _from_xcom(operator: Any, task_id: str, pull: Callable[[str, str], Any], *, in_worker: bool) -> str:
    """The job URL from the XCom of the task itself, else of its upstream tasks (submit first)."""
    upstream = sorted(getattr(operator, "upstream_task_ids", ()) or (), key=lambda t: (t != SUBMIT_TASK_ID, t))
    for source in (task_id, *upstream):
        url = pull(source, JOB_URL_XCOM_KEY)
        if isinstance(url, str) and url:
            return safe_http_url(url)
        job_id, conn_id = pull(source, JOB_ID_XCOM_KEY), pull(source, CONN_ID_XCOM_KEY)
        if isinstance(job_id, str) and job_id and isinstance(conn_id, str) and conn_id:
            return job_url(_connection(conn_id, in_worker), job_id)
    return ""


def _connection(conn_id: str, in_worker: bool) -> Any:
    if in_worker:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def _stored_xcom(ti_key: Any, task_id: str, xcom_key: str) -> str:
    """A stored string XCom of ``task_id`` in ``ti_key``'s run, read the way Airflow reads stored
    links (JSON, never unpickled or deserialized into objects); ``""`` when there is none."""
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.serialization.definitions.operatorlink import XComOperatorLink

    map_index = ti_key.map_index if task_id == ti_key.task_id else -1
    key = TaskInstanceKey(ti_key.dag_id, task_id, ti_key.run_id, ti_key.try_number, map_index)
    # XComOperatorLink.get_link never uses its operator argument.
    return XComOperatorLink(name=LINK_NAME, xcom_key=xcom_key).get_link(None, ti_key=key) or ""  # type: ignore[arg-type]
