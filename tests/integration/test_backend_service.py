"""The reference backend and the HTTP client, against the real service on a loopback port."""
from __future__ import annotations

import copy
import json
import time

import httpx
import pandas as pd
import pytest

from chronon_airflow import naming, warehouse
from chronon_airflow.backend.http import HttpModelBackend
from chronon_airflow.backend.idempotency import idempotency_key
from chronon_airflow.backend.interface import BackendConflictError, BackendError, BackendNotFoundError
from chronon_reference_backend.server import OPENAPI_PATH
from tests.support.backend import (
    load_join,
    query_relevance_rows,
    register_join,
    start_backend,
    wait_for_job,
    write_pre_mt,
)
from tests.support.net import free_port

QR = "search/query_relevance.v1"
TF = "risk/txn_fraud.v1"


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend")
    b = start_backend(root / "home", free_port(), root / "warehouse")
    yield b
    b.stop()


@pytest.fixture
def client(backend):
    httpx.delete(backend.url + "/admin/faults")
    with HttpModelBackend(backend.url, backoff_initial=0.01, backoff_max=1.0) as c:
        yield c
    httpx.delete(backend.url + "/admin/faults")


def test_serve_created_artifacts_for_configs_models(backend):
    # The lead's configs/ define three reference models; an empty --home gets one artifact each.
    found = sorted(p.parent.relative_to(backend.home / "models").as_posix()
                   for p in (backend.home / "models").rglob("model.joblib"))
    assert found == ["fraud_scorer/1", "merchant_embedder/1", "query_encoder/3"]


def test_openapi_in_repo_is_what_the_service_serves(backend):
    served = httpx.get(backend.url + "/openapi.json").json()
    assert served == json.loads(OPENAPI_PATH.read_text()), \
        "openapi.json is stale: run `python -m chronon_reference_backend openapi`"
    assert sorted(served["paths"]) == [f"/modelBackend/{c}" for c in sorted(
        ["getModelBatchJobStatus", "registerModel", "registerModelTransform", "runModelBatchJob",
         "runModelInference"])]
    assert httpx.get(backend.url + "/docs").status_code == 200


def test_registration_success(client):
    join = load_join(QR)
    r = register_join(client, join)
    assert r.status == "REGISTERED"
    assert "qe_query_embedding" in r.message


def test_unknown_model_is_rejected(client):
    model = copy.deepcopy(load_join(QR)["modelTransforms"]["transforms"][0]["model"])
    model["inferenceSpec"]["modelBackendParams"]["model_version"] = "99"
    r = client.register_model(model)
    assert not r.is_success and r.status == "REJECTED"
    assert "unknown model 'query_encoder' version 99" in r.message


def test_unsatisfiable_input_mapping_is_rejected(client):
    join = copy.deepcopy(load_join(QR))
    join["modelTransforms"]["transforms"][0]["inputMappings"] = {"query": "no_such_column"}
    client.register_model(join["modelTransforms"]["transforms"][0]["model"])
    r = client.register_model_transform(join)
    assert not r.is_success
    assert "input 'query' needs column 'no_such_column'" in r.message


def test_model_schema_must_match_artifact(client):
    model = copy.deepcopy(load_join(TF)["modelTransforms"]["transforms"][0]["model"])  # fraud_scorer, 3 inputs
    model["inputSchema"]["params"] = model["inputSchema"]["params"][:2]
    r = client.register_model(model)
    assert not r.is_success and "takes 3 inputs" in r.message


def test_unregistered_transform_is_409(client):
    join = copy.deepcopy(load_join(QR))
    join["metaData"]["name"] = "search.never_registered.v1"
    with pytest.raises(BackendConflictError, match="not registered"):
        client.run_model_batch_job(join, "2024-01-01", "2024-01-01", "k-unregistered")


def test_unknown_job_is_404(client):
    with pytest.raises(BackendNotFoundError, match="unknown job id"):
        client.get_model_batch_job_status("job-nope", "2024-01-01", "2024-01-01")


def test_batch_job_writes_output_table(backend, client):
    join = load_join(QR)
    register_join(client, join)
    for ds in ("2024-01-01", "2024-01-02"):
        write_pre_mt(backend.warehouse, join, ds, query_relevance_rows(ds))
    key = idempotency_key(join, "2024-01-01", "2024-01-02")
    job_id = client.run_model_batch_job(join, "2024-01-01", "2024-01-02", key)
    status = wait_for_job(client, job_id, "2024-01-01", "2024-01-02")
    assert status.status == "SUCCEEDED" and status.is_success, status.message
    assert "wrote 2 partitions (6 rows)" in status.message

    out = naming.output_table("search_features", "search.query_relevance.v1")
    assert warehouse.list_partitions(backend.warehouse, out) == ["2024-01-01", "2024-01-02"]
    frame = pd.read_parquet(warehouse.partition_path(backend.warehouse, out, "2024-01-01"))
    assert list(frame.columns) == ["ts", "user_id", "item_id", "item_dwell_per_click_7d", "qe_query_embedding"]
    assert frame["user_id"].tolist() == ["u1", "u2", "u3"]
    assert frame["ts"].tolist() == query_relevance_rows("2024-01-01")["ts"].tolist()
    embeddings = [list(e) for e in frame["qe_query_embedding"]]
    assert all(len(e) == 8 for e in embeddings)
    assert embeddings[0] == pytest.approx(embeddings[2])  # same query text -> same embedding
    assert embeddings[0] != pytest.approx(embeddings[1])

    # The same rows served online give the same embedding as the batch job.
    online = client.run_model_inference(join, [{"query_text": "red running shoes", "user_id": "u1"}])
    assert online[0]["qe_query_embedding"] == pytest.approx(embeddings[0])
    assert online[0]["user_id"] == "u1"


def test_resubmit_returns_same_job(backend, client):
    join = load_join(QR)
    register_join(client, join)
    write_pre_mt(backend.warehouse, join, "2024-02-01", query_relevance_rows("2024-02-01"))
    key = idempotency_key(join, "2024-02-01", "2024-02-01")
    first = client.run_model_batch_job(join, "2024-02-01", "2024-02-01", key)
    second = client.run_model_batch_job(join, "2024-02-01", "2024-02-01", key)
    assert first == second
    other = client.run_model_batch_job(join, "2024-02-01", "2024-02-01", key + "-other")
    assert other != first
    assert wait_for_job(client, first, "2024-02-01", "2024-02-01").status == "SUCCEEDED"
    assert client.run_model_batch_job(join, "2024-02-01", "2024-02-01", key) == first  # also once finished


def test_missing_partitions_fail_the_job_with_a_message(client):
    join = load_join(QR)
    register_join(client, join)
    job_id = client.run_model_batch_job(join, "2023-06-01", "2023-06-02", "k-missing")
    status = wait_for_job(client, job_id, "2023-06-01", "2023-06-02")
    assert status.status == "FAILED" and not status.is_success
    assert status.message.startswith("missing input partitions ds=2023-06-01, ds=2023-06-02 of table "
                                     "search_features.search_query_relevance_v1_pre_mt")


def test_missing_input_column_fails_the_job(backend, client):
    join = load_join(QR)
    register_join(client, join)
    write_pre_mt(backend.warehouse, join, "2024-03-01", query_relevance_rows("2024-03-01").drop(columns="query_text"))
    job_id = client.run_model_batch_job(join, "2024-03-01", "2024-03-01", "k-no-column")
    status = wait_for_job(client, job_id, "2024-03-01", "2024-03-01")
    assert status.status == "FAILED"
    assert "input 'query' reads column 'query_text', which is missing" in status.message


def test_retries_on_503_and_429(backend, client):
    backend.admin("POST", "/admin/faults", json={"fail_next": 2, "status": 503})
    assert client.register_model(load_join(QR)["modelTransforms"]["transforms"][0]["model"]).is_success
    assert backend.admin("GET", "/admin/faults")["injected"] == 2

    backend.admin("POST", "/admin/faults", json={"fail_next": 1, "status": 429, "retry_after": 0.5})
    started = time.monotonic()
    assert client.register_model(load_join(QR)["modelTransforms"]["transforms"][0]["model"]).is_success
    assert time.monotonic() - started >= 0.5  # honoured Retry-After, not the 10 ms backoff


def test_gives_up_after_max_attempts(backend):
    backend.admin("POST", "/admin/faults", json={"fail_next": 5, "status": 502})
    try:
        with HttpModelBackend(backend.url, max_attempts=2, backoff_initial=0.01) as c:
            with pytest.raises(BackendError) as info:
                c.get_model_batch_job_status("job-x", "2024-01-01", "2024-01-01")
        assert info.value.transient and info.value.status_code == 502
    finally:
        backend.admin("DELETE", "/admin/faults")


def test_malformed_json_is_retried(backend, client):
    backend.admin("POST", "/admin/faults", json={"malformed_next": 1})
    assert client.register_model(load_join(QR)["modelTransforms"]["transforms"][0]["model"]).is_success


def test_injected_job_failure_and_job_counts(backend, client):
    join = load_join(QR)
    register_join(client, join)
    write_pre_mt(backend.warehouse, join, "2024-04-01", query_relevance_rows("2024-04-01"))
    backend.admin("POST", "/admin/faults", json={"fail_jobs_for_joins": [join["metaData"]["name"]]})
    job_id = client.run_model_batch_job(join, "2024-04-01", "2024-04-01", "k-injected")
    status = wait_for_job(client, job_id, "2024-04-01", "2024-04-01")
    assert status.status == "FAILED" and "injected failure" in status.message
    counts = backend.admin("GET", "/admin/jobs")
    assert counts["byStatus"]["FAILED"] >= 1 and counts["total"] >= 1
    # A failed job does not pin its key: resubmitting after the fault is gone starts a new attempt.
    backend.admin("DELETE", "/admin/faults")
    retry = client.run_model_batch_job(join, "2024-04-01", "2024-04-01", "k-injected")
    assert retry != job_id
    assert wait_for_job(client, retry, "2024-04-01", "2024-04-01").status == "SUCCEEDED"


def test_two_models_on_one_join(backend, client):
    join = load_join(TF)
    register_join(client, join)
    outputs = client.run_model_inference(join, [
        {"txn_id": "t1", "merchant_id": "m_001", "amount_cents": 1200,
         "risk_user_txn_stats_v1_txn_id_count_7d": 2, "risk_user_txn_stats_v1_amount_cents_sum_30d": 4000},
        {"txn_id": "t2", "merchant_id": "m_002", "amount_cents": 900000,
         "risk_user_txn_stats_v1_txn_id_count_7d": 40, "risk_user_txn_stats_v1_amount_cents_sum_30d": 9000000},
    ])
    assert [o["txn_id"] for o in outputs] == ["t1", "t2"]
    assert all(0.0 <= o["fraud_score"] <= 1.0 for o in outputs)
    assert outputs[0]["fraud_score"] != outputs[1]["fraud_score"]
    assert all(len(o["merchant_embedding"]) == 8 for o in outputs)


def test_oversized_body_is_413(backend):
    body = b'{"model": {"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}}'
    r = httpx.post(backend.url + "/modelBackend/registerModel", content=body,
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413


def test_admin_is_off_by_default(tmp_path):
    b = start_backend(tmp_path / "home", free_port(), tmp_path / "wh", admin=False)
    try:
        assert httpx.post(b.url + "/admin/faults", json={"fail_next": 1}).status_code == 404
    finally:
        b.stop()


def test_state_survives_restart(tmp_path):
    join = load_join(QR)
    home, wh = tmp_path / "home", tmp_path / "wh"
    write_pre_mt(wh, join, "2024-05-01", query_relevance_rows("2024-05-01"))
    b = start_backend(home, free_port(), wh)
    try:
        with HttpModelBackend(b.url) as c:
            register_join(c, join)
            job_id = c.run_model_batch_job(join, "2024-05-01", "2024-05-01", "k-restart")
            assert wait_for_job(c, job_id, "2024-05-01", "2024-05-01").status == "SUCCEEDED"
    finally:
        b.stop()
    b = start_backend(home, free_port(), wh)
    try:
        with HttpModelBackend(b.url) as c:
            assert c.get_model_batch_job_status(job_id, "2024-05-01", "2024-05-01").status == "SUCCEEDED"
            # Registration persisted: no 409 for a new range without registering again.
            write_pre_mt(wh, join, "2024-05-02", query_relevance_rows("2024-05-02"))
            job2 = c.run_model_batch_job(join, "2024-05-02", "2024-05-02", "k-restart-2")
            assert wait_for_job(c, job2, "2024-05-02", "2024-05-02").status == "SUCCEEDED"
    finally:
        b.stop()


def test_job_running_at_restart_is_resumed(tmp_path):
    from chronon_reference_backend.store import Store

    join = load_join(QR)
    home, wh = tmp_path / "home", tmp_path / "wh"
    write_pre_mt(wh, join, "2024-06-01", query_relevance_rows("2024-06-01"))
    # A job a crashed server left RUNNING in its SQLite file.
    store = Store(home / "backend.sqlite3")
    job, _ = store.find_or_create_job("k-crashed", join["metaData"]["name"], "2024-06-01", "2024-06-01", join)
    store.set_status(job.job_id, "RUNNING", "wrote 0/1 partitions")
    b = start_backend(home, free_port(), wh)
    try:
        with HttpModelBackend(b.url) as c:
            status = wait_for_job(c, job.job_id, "2024-06-01", "2024-06-01")
        assert status.status == "SUCCEEDED", status.message
        out = naming.output_table("search_features", "search.query_relevance.v1")
        assert warehouse.list_partitions(wh, out) == ["2024-06-01"]
    finally:
        b.stop()


def test_empty_input_partition_gives_empty_output_partition(backend, client):
    # The local engine commits days without rows as empty parquet files with the schema.
    join = load_join(QR)
    register_join(client, join)
    write_pre_mt(backend.warehouse, join, "2024-09-01", query_relevance_rows("2024-09-01").iloc[:0])
    job_id = client.run_model_batch_job(join, "2024-09-01", "2024-09-01", "k-empty")
    status = wait_for_job(client, job_id, "2024-09-01", "2024-09-01")
    assert status.status == "SUCCEEDED", status.message
    out = naming.output_table("search_features", "search.query_relevance.v1")
    frame = pd.read_parquet(warehouse.partition_path(backend.warehouse, out, "2024-09-01"))
    assert len(frame) == 0
    assert list(frame.columns) == ["ts", "user_id", "item_id", "item_dwell_per_click_7d", "qe_query_embedding"]


def test_a_join_whose_tables_cannot_be_named_fails_its_job(client):
    """A join without metaData.outputNamespace: the job ends FAILED saying why, never stays PENDING."""
    join = load_join(QR)
    join["metaData"].pop("outputNamespace")
    join["metaData"]["name"] = "search.query_relevance_no_namespace.v1"
    register_join(client, join)
    job_id = client.run_model_batch_job(join, "2024-02-01", "2024-02-01", "k-no-namespace")
    status = wait_for_job(client, job_id, "2024-02-01", "2024-02-01")
    assert status.status == "FAILED", status
    assert "has no metaData.outputNamespace" in status.message
