"""The model-backend fault matrix, against the real reference service (fault injection at /admin/faults).

Each test is one row of the table in docs/reliability.md: inject the fault, check what the client,
operator, trigger or sensor does, clear the fault, rerun the range the way Airflow would (same
idempotency key), then check on the server that the range has no duplicate job and in the warehouse
that every partition of the range was written. Each row uses its own date range.
"""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from chronon_airflow import naming, warehouse
from chronon_airflow.backend.http import HttpModelBackend
from chronon_airflow.backend.idempotency import idempotency_key
from chronon_airflow.backend.interface import BackendError
from chronon_reference_backend.jobs import date_range
from chronon_reference_backend.store import Store
from tests.support.backend import (
    CONN_ENV,
    first_event,
    load_join,
    query_relevance_rows,
    register_join,
    start_backend,
    trigger_for,
    wait_for_job,
    write_pre_mt,
)
from tests.support.net import free_port

QR = "search/query_relevance.v1"
JOIN = load_join(QR)
OUT = naming.output_table("search_features", "search.query_relevance.v1")
# range -> failed attempts the row expects on the server (0 for all but the FAILED-job row)
RANGES: dict[tuple[str, str], int] = {}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-matrix")
    b = start_backend(root / "home", free_port(), root / "warehouse")
    with HttpModelBackend(b.url) as c:
        register_join(c, JOIN)
    yield b
    b.stop()


@pytest.fixture
def client(backend):
    backend.admin("DELETE", "/admin/faults")
    with HttpModelBackend(backend.url, backoff_initial=0.01, backoff_max=2.0) as c:
        yield c
    backend.admin("DELETE", "/admin/faults")


@pytest.fixture
def connection(backend, monkeypatch):
    """The Airflow connection operators and triggers resolve; one attempt per call for the trigger."""
    monkeypatch.setenv(CONN_ENV, backend.connection("tok-matrix-secret", timeout=10, backoff_initial=0.01,
                                                    max_attempts=1))


def faults(backend, **settings) -> None:
    backend.admin("POST", "/admin/faults", json=settings)


def jobs_total(backend) -> int:
    return backend.admin("GET", "/admin/jobs")["total"]


def prepare(backend, start: str, end: str, failed_attempts: int = 0) -> str:
    """Raw-join input for the range; returns the idempotency key every submit of it carries."""
    assert (start, end) not in RANGES, "each row uses its own range"
    RANGES[(start, end)] = failed_attempts
    for ds in date_range(start, end):
        write_pre_mt(backend.warehouse, JOIN, ds, query_relevance_rows(ds))
    return idempotency_key(JOIN, start, end)


def assert_filled(wh, start: str, end: str) -> None:
    have = set(warehouse.list_partitions(wh, OUT))
    missing = [ds for ds in date_range(start, end) if ds not in have]
    assert not missing, f"partitions {missing} of {OUT} were not written"


def rerun(backend, client, start: str, end: str, key: str) -> str:
    """What Airflow does once the fault is gone: submit again (same key), wait for the job."""
    job_id = client.run_model_batch_job(JOIN, start, end, key)
    status = wait_for_job(client, job_id, start, end)
    assert status.status == "SUCCEEDED", status.message
    assert_filled(backend.warehouse, start, end)
    return job_id


def sensor_for(job_id, start, end):
    from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

    return ModelBatchJobSensor(task_id="wait", join=JOIN, job_id=job_id, start_ds=start, end_ds=end, timeout=60)


# -- rows ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("status,start", [(500, "2025-01-01"), (503, "2025-01-11")])
def test_5xx_on_submit_is_retried_into_one_job(backend, client, status, start):
    end = start[:-1] + "3"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    faults(backend, fail_next=2, status=status)
    job_id = client.run_model_batch_job(JOIN, start, end, key)
    assert backend.admin("GET", "/admin/faults")["injected"] == 2
    assert rerun(backend, client, start, end, key) == job_id
    assert jobs_total(backend) == before + 1


def test_429_honours_retry_after(backend, client):
    start, end = "2025-02-01", "2025-02-02"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    faults(backend, fail_next=1, status=429, retry_after=0.6)
    began = time.monotonic()
    job_id = client.run_model_batch_job(JOIN, start, end, key)
    assert time.monotonic() - began >= 0.6  # waited what the server asked, not the 10 ms backoff
    assert rerun(backend, client, start, end, key) == job_id
    assert jobs_total(backend) == before + 1


def test_5xx_past_client_retries_is_a_retryable_task_failure(backend, client, connection):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from chronon_airflow.operators.model_backend import RegisterModelTransformOperator

    faults(backend, fail_next=1, status=500)  # the connection allows one attempt per call
    op = RegisterModelTransformOperator(task_id="register_model_transform", join=JOIN)
    with pytest.raises(AirflowException, match="HTTP 500") as info:
        op.execute({})
    assert not isinstance(info.value, AirflowFailException)  # Airflow's task retry will run it again
    assert op.execute({})["isSuccess"]  # ... and the retry succeeds


def test_timeout_then_retry_finds_the_job_the_timed_out_call_created(backend, client):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from chronon_airflow.operators.model_backend import backend_failure

    start, end = "2025-03-01", "2025-03-02"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    faults(backend, latency_ms=800)
    with HttpModelBackend(backend.url, timeout=0.3, max_attempts=2, backoff_initial=0.01) as slow:
        with pytest.raises(BackendError) as info:
            slow.run_model_batch_job(JOIN, start, end, key)
    assert info.value.transient and "ReadTimeout" in info.value.message
    failure = backend_failure("runModelBatchJob", "reference", info.value, [])
    assert isinstance(failure, AirflowException) and not isinstance(failure, AirflowFailException)
    # The server still handled the slow requests after the client gave up: both carried one key.
    deadline = time.monotonic() + 10
    while jobs_total(backend) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    backend.admin("DELETE", "/admin/faults")
    rerun(backend, client, start, end, key)
    assert jobs_total(backend) == before + 1


def test_connection_refused_is_retryable_and_creates_nothing(backend, client):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from chronon_airflow.operators.model_backend import backend_failure

    start, end = "2025-04-01", "2025-04-03"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    began = time.monotonic()
    with HttpModelBackend(dead, max_attempts=3, backoff_initial=0.01, connect_timeout=1) as c:
        with pytest.raises(BackendError) as info:
            c.run_model_batch_job(JOIN, start, end, key)
    assert time.monotonic() - began < 5
    assert info.value.transient and info.value.status_code is None and "ConnectError" in info.value.message
    failure = backend_failure("runModelBatchJob", "reference", info.value, [])
    assert isinstance(failure, AirflowException) and not isinstance(failure, AirflowFailException)
    assert jobs_total(backend) == before
    rerun(backend, client, start, end, key)
    assert jobs_total(backend) == before + 1


def test_malformed_json_is_retried(backend, client):
    start, end = "2025-05-01", "2025-05-02"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    faults(backend, malformed_next=2)  # the submit's first answer and its retry's
    job_id = client.run_model_batch_job(JOIN, start, end, key)
    faults(backend, malformed_next=1)  # and a status poll
    assert wait_for_job(client, job_id, start, end).status == "SUCCEEDED"
    assert backend.admin("GET", "/admin/faults")["injected"] == 3
    assert rerun(backend, client, start, end, key) == job_id
    assert jobs_total(backend) == before + 1


def test_unknown_job_id_ends_the_wait_at_once(backend, client, connection):
    from airflow.sdk.exceptions import AirflowException

    requests_before = backend.admin("GET", "/admin/faults")["requests"]
    event = asyncio.run(first_event(trigger_for("job-does-not-exist", "2025-06-01", "2025-06-01",
                                                max_consecutive_errors=5)))
    assert backend.admin("GET", "/admin/faults")["requests"] - requests_before == 1  # a 404 is not retried
    assert event["status"] == "error" and "404" in event["message"] and "unknown job id" in event["message"]
    with pytest.raises(AirflowException, match="unknown job id"):
        sensor_for("job-does-not-exist", "2025-06-01", "2025-06-01").execute_complete({}, event)


def test_failed_job_fails_the_sensor_and_a_rerun_starts_one_new_attempt(backend, client, connection):
    from airflow.sdk.exceptions import AirflowFailException

    start, end = "2025-07-01", "2025-07-03"
    key = prepare(backend, start, end, failed_attempts=1)
    before = jobs_total(backend)
    faults(backend, fail_jobs_for_joins=[JOIN["metaData"]["name"]])
    failed = client.run_model_batch_job(JOIN, start, end, key)
    event = asyncio.run(first_event(trigger_for(failed, start, end)))
    assert event["status"] == "failed" and event["job_status"] == "FAILED"
    with pytest.raises(AirflowFailException, match="FAILED: injected failure"):
        sensor_for(failed, start, end).execute_complete({}, event)
    assert not any(ds in warehouse.list_partitions(backend.warehouse, OUT) for ds in date_range(start, end))
    backend.admin("DELETE", "/admin/faults")
    retry = rerun(backend, client, start, end, key)
    assert retry != failed  # a FAILED job does not pin its key
    assert rerun(backend, client, start, end, key) == retry  # the successful one does
    assert jobs_total(backend) == before + 2


def test_job_stuck_past_the_sensor_timeout(backend, client, connection):
    from airflow.sdk.exceptions import AirflowSensorTimeout

    start, end = "2025-08-01", "2025-08-02"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    faults(backend, job_delay_ms=8000)  # still running well after the wait gave up, even on a slow machine
    job_id = client.run_model_batch_job(JOIN, start, end, key)
    began = time.monotonic()
    event = asyncio.run(first_event(trigger_for(job_id, start, end, deadline=time.time() + 0.4)))
    assert 0.35 <= time.monotonic() - began < 6
    assert event["status"] == "timeout" and "may still be running" in event["message"]
    with pytest.raises(AirflowSensorTimeout):
        sensor_for(job_id, start, end).execute_complete({}, event)
    # The rerun submits the same range while the job still runs: it gets that job, not a second one.
    assert client.get_model_batch_job_status(job_id, start, end).status in ("PENDING", "RUNNING")
    assert rerun(backend, client, start, end, key) == job_id
    assert jobs_total(backend) == before + 1


def test_registration_rejected_fails_the_task_without_retry(backend, client, connection):
    import copy

    from airflow.sdk.exceptions import AirflowFailException

    from chronon_airflow.operators.model_backend import RegisterModelOperator, RegisterModelTransformOperator

    model = copy.deepcopy(JOIN["modelTransforms"]["transforms"][0]["model"])
    model["inferenceSpec"]["modelBackendParams"]["model_version"] = "99"
    with pytest.raises(AirflowFailException, match="unknown model 'query_encoder' version 99"):
        RegisterModelOperator(task_id="register_model.query_encoder", model=model).execute({})
    join = copy.deepcopy(JOIN)
    join["metaData"]["name"] = "search.rejected_transform.v1"
    join["modelTransforms"]["transforms"][0]["inputMappings"] = {"query": "no_such_column"}
    with pytest.raises(AirflowFailException, match="needs column 'no_such_column'"):
        RegisterModelTransformOperator(task_id="register_model_transform", join=join).execute({})
    # Nothing was registered for it: a submit is refused (409), it never starts a job.
    before = jobs_total(backend)
    with pytest.raises(BackendError, match="not registered") as info:
        client.run_model_batch_job(join, "2025-09-01", "2025-09-01", "k-rejected")
    assert info.value.status_code == 409 and not info.value.transient
    assert jobs_total(backend) == before


def test_triggerer_restart_mid_poll_resumes_from_serialize(backend, client, connection):
    from chronon_airflow.triggers.model_batch_job import ModelBatchJobTrigger

    start, end = "2025-10-01", "2025-10-03"
    key = prepare(backend, start, end)
    before = jobs_total(backend)
    faults(backend, job_delay_ms=6000)  # RUNNING for the whole cut, even on a slow machine
    job_id = client.run_model_batch_job(JOIN, start, end, key)
    first = trigger_for(job_id, start, end, deadline=time.time() + 60)
    polls_before = backend.admin("GET", "/admin/faults")["requests"]

    async def polls() -> int:
        return (await asyncio.to_thread(backend.admin, "GET", "/admin/faults"))["requests"] - polls_before

    async def cut_mid_poll():
        task = asyncio.create_task(first_event(first))
        bound = time.monotonic() + 10
        while await polls() < 3 and time.monotonic() < bound:  # several polls of a RUNNING job
            await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()  # what a triggerer shutdown does to its triggers
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cut_mid_poll())
    assert backend.admin("GET", "/admin/faults")["requests"] - polls_before >= 3
    assert client.get_model_batch_job_status(job_id, start, end).status in ("PENDING", "RUNNING")
    path, kwargs = first.serialize()
    resumed = ModelBatchJobTrigger(**json.loads(json.dumps(kwargs)))  # as stored in the metadata DB
    assert resumed.deadline == first.deadline  # a restart does not extend the timeout
    event = asyncio.run(first_event(resumed))
    assert event["status"] == "success" and event["job_id"] == job_id
    assert_filled(backend.warehouse, start, end)
    assert rerun(backend, client, start, end, key) == job_id
    assert jobs_total(backend) == before + 1


def test_backend_crash_mid_job_resumes_the_same_job(tmp_path):
    """SIGKILL the service while a job is RUNNING; the restarted service re-runs that job, the
    resubmit gets it, and every partition is written once the job ends."""
    home, wh = tmp_path / "home", tmp_path / "wh"
    port = free_port()
    start, end = "2025-11-01", "2025-11-04"
    b = start_backend(home, port, wh)
    try:
        key = idempotency_key(JOIN, start, end)
        for ds in date_range(start, end):
            write_pre_mt(wh, JOIN, ds, query_relevance_rows(ds))
        with HttpModelBackend(b.url, backoff_initial=0.05) as c:
            register_join(c, JOIN)
            b.admin("POST", "/admin/faults", json={"job_delay_ms": 3000})
            job_id = c.run_model_batch_job(JOIN, start, end, key)
            deadline = time.monotonic() + 10
            while c.get_model_batch_job_status(job_id, start, end).status != "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        b.process.kill()  # a crash: no graceful shutdown
        b.process.wait(timeout=10)
        assert warehouse.list_partitions(wh, OUT) == []
        with pytest.raises(httpx.ConnectError):
            httpx.get(b.url + "/healthz", timeout=1)
        b = start_backend(home, port, wh)
        with HttpModelBackend(b.url, backoff_initial=0.05) as c:
            assert c.run_model_batch_job(JOIN, start, end, key) == job_id  # resubmit: the same job
            status = wait_for_job(c, job_id, start, end, timeout=30)
            assert status.status == "SUCCEEDED", status.message
        assert b.admin("GET", "/admin/jobs") == {"total": 1, "byStatus": {"SUCCEEDED": 1}}
        assert warehouse.list_partitions(wh, OUT) == date_range(start, end)
    finally:
        b.stop()


def test_across_the_matrix_no_duplicate_jobs_and_every_partition_filled(backend):
    """Run last in this module: the server's own records for every range the rows used."""
    assert len(RANGES) >= 8, "the rows above did not all run"
    store = Store(backend.home / "backend.sqlite3")  # read the server's SQLite, as /admin/jobs does
    counts = backend.admin("GET", "/admin/jobs")
    assert counts["total"] == sum(c for c in store.job_counts().values())
    assert counts["byStatus"].get("PENDING", 0) == counts["byStatus"].get("RUNNING", 0) == 0
    with store._connect() as db:
        rows = db.execute("SELECT start_ds, end_ds, status FROM jobs").fetchall()
    for (start, end), failed_attempts in RANGES.items():
        statuses = sorted(r["status"] for r in rows if (r["start_ds"], r["end_ds"]) == (start, end))
        assert statuses == ["FAILED"] * failed_attempts + ["SUCCEEDED"], (start, end, statuses)
        assert_filled(backend.warehouse, start, end)
