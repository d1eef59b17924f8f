"""The batch-job task submits and waits: a job that FAILS once, then the task's own retry, ends in
success with exactly two jobs on the (real, reference) backend; a retry of a running job re-attaches."""
from __future__ import annotations

import asyncio
import sqlite3
from collections import defaultdict
from types import SimpleNamespace

import pytest

from tests.support.backend import (
    CONN_ENV,
    first_event,
    load_join,
    query_relevance_rows,
    running_backend,
    write_pre_mt,
)

QR = "search/query_relevance.v1"
QR_NAME = "search.query_relevance.v1"


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with running_backend(tmp_path_factory.mktemp("backend-retry"), QR) as b:
        yield b


@pytest.fixture
def connection(backend, monkeypatch):
    monkeypatch.setenv(CONN_ENV, backend.connection(max_attempts=1, timeout=10))
    yield
    backend.admin("DELETE", "/admin/faults")


def jobs(backend, start: str, end: str) -> list[tuple[str, str]]:
    """(job id, status) of every job of the join for the range, oldest first."""
    db = sqlite3.connect(backend.home / "backend.sqlite3")
    try:
        return db.execute("SELECT job_id, status FROM jobs WHERE join_name = ? AND start_ds = ? AND end_ds = ? "
                          "ORDER BY created_at", (QR_NAME, start, end)).fetchall()
    finally:
        db.close()


class _TI:
    """Just what the operator uses of a task instance: its XCom (fresh for every try)."""

    def __init__(self):
        self.task_id = "wait_for_batch_inference"
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return self.xcom.get(key)


def try_once(op, backend):
    """One try of the task as Airflow runs it: execute, and if it defers, the trigger then
    execute_complete. Returns (result or exception, the context)."""
    from airflow.sdk.exceptions import TaskDeferred

    context = {"ti": _TI(), "outlet_events": defaultdict(SimpleNamespace)}
    try:
        try:
            return op.execute(context), context
        except TaskDeferred as deferred:
            event = asyncio.run(first_event(deferred.trigger))
            return getattr(op, deferred.method_name)(context, event), context
    except Exception as e:  # noqa: BLE001 - the try's outcome is what the test looks at
        return e, context


def _operator(ds: str):
    from airflow.sdk import Asset

    from chronon_airflow.operators.model_backend import ModelBatchInferenceOperator

    return ModelBatchInferenceOperator(task_id="wait_for_batch_inference", join=load_join(QR), start_ds=ds, end_ds=ds,
                                       poll_interval=0.05, timeout=60,
                                       outlets=[Asset(name="search_features.search_query_relevance_v1",
                                                      uri="chronon://search_features/search_query_relevance_v1")])


def test_a_job_that_fails_once_then_the_tasks_retry_succeeds_with_two_jobs(backend, connection):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    ds = "2024-09-01"
    write_pre_mt(backend.warehouse, load_join(QR), ds, query_relevance_rows(ds))
    backend.admin("POST", "/admin/faults", json={"fail_jobs_for_joins": [QR_NAME]})
    op = _operator(ds)

    first, ctx1 = try_once(op, backend)
    assert isinstance(first, AirflowException) and not isinstance(first, AirflowFailException), first
    assert "ended FAILED: injected failure" in str(first)
    failed_job = ctx1["ti"].xcom["job_id"]
    assert jobs(backend, ds, ds) == [(failed_job, "FAILED")]
    # The e-mail of a final failure would link the job.
    assert op.chronon_links(ctx1) == [(f"Model backend job {failed_job}", ctx1["ti"].xcom["model_backend_job_url"])]
    assert ctx1["ti"].xcom["model_backend_job_url"].endswith(f"/modelBackend/jobs/{failed_job}")

    backend.admin("DELETE", "/admin/faults")
    second, ctx2 = try_once(_operator(ds), backend)  # the retry: a fresh try of the same task
    new_job = ctx2["ti"].xcom["job_id"]
    assert second == new_job and new_job != failed_job
    assert jobs(backend, ds, ds) == [(failed_job, "FAILED"), (new_job, "SUCCEEDED")]
    (event,) = ctx2["outlet_events"].values()
    assert event.extra == {"start_ds": ds, "end_ds": ds, "job_id": new_job}

    # A rerun of the same range (a clear after success) gets the succeeded job: still two jobs.
    third, ctx3 = try_once(_operator(ds), backend)
    assert third == new_job and len(jobs(backend, ds, ds)) == 2


def test_a_retry_while_the_job_runs_reattaches_to_it(backend, connection):
    from airflow.sdk.exceptions import TaskDeferred

    ds = "2024-09-02"
    write_pre_mt(backend.warehouse, load_join(QR), ds, query_relevance_rows(ds))
    backend.admin("POST", "/admin/faults", json={"job_delay_ms": 2000})
    context = {"ti": _TI(), "outlet_events": defaultdict(SimpleNamespace)}
    with pytest.raises(TaskDeferred):  # the worker crashed here, say: the task is retried
        _operator(ds).execute(context)
    running = context["ti"].xcom["job_id"]
    result, ctx = try_once(_operator(ds), backend)
    assert result == running and ctx["ti"].xcom["job_id"] == running
    assert jobs(backend, ds, ds) == [(running, "SUCCEEDED")]


def test_a_refused_job_fails_for_good(backend, connection):
    from airflow.sdk.exceptions import AirflowFailException

    join = load_join(QR)
    join["modelTransforms"]["transforms"][0]["model"]["metaData"]["name"] = "changed_after_registration"
    from chronon_airflow.operators.model_backend import ModelBatchInferenceOperator

    op = ModelBatchInferenceOperator(task_id="wait_for_batch_inference", join=join, start_ds="2024-09-03",
                                     end_ds="2024-09-03", poll_interval=0.05, timeout=60)
    result, _ = try_once(op, backend)
    assert isinstance(result, AirflowFailException) and "refused the batch job" in str(result)
