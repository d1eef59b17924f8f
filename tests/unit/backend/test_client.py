"""Pure client-side pieces: idempotency key, redaction, backend resolution of a join."""
from __future__ import annotations

import copy
import json

import pytest

from chronon_airflow.backend import join_models
from chronon_airflow.backend.http import parse_retry_after
from chronon_airflow.backend.idempotency import idempotency_key
from chronon_airflow.backend.redact import REDACTED, redact, redact_text, secret_values
from chronon_airflow.exceptions import InvalidConfig
from tests.support.backend import load_join


def test_idempotency_key_is_deterministic_and_sensitive():
    join = load_join("search/query_relevance.v1")
    key = idempotency_key(join, "2024-01-01", "2024-01-02")
    assert key == idempotency_key(copy.deepcopy(join), "2024-01-01", "2024-01-02")
    assert len(key) == 64
    # Key order inside the dict does not matter (canonical JSON)...
    reordered = dict(reversed(list(join.items())))
    assert idempotency_key(reordered, "2024-01-01", "2024-01-02") == key
    # ...but the range and the model transforms do.
    assert idempotency_key(join, "2024-01-01", "2024-01-03") != key
    changed = copy.deepcopy(join)
    changed["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]["model_version"] = "4"
    assert idempotency_key(changed, "2024-01-01", "2024-01-02") != key
    # Changes outside modelTransforms (e.g. a description) keep the same job.
    described = copy.deepcopy(join)
    described["metaData"]["description"] = "edited"
    assert idempotency_key(described, "2024-01-01", "2024-01-02") == key


def test_redaction():
    params = {"model_name": "m", "model_version": "3", "api_token": "t0k", "ClientSecret": "s3c",
              "password": "pw1", "access_key": "AKIA", "nested": {"credentials": {"a": 1}}, "idempotencyKey": "k"}
    red = redact({"inferenceSpec": {"modelBackendParams": params}})["inferenceSpec"]["modelBackendParams"]
    assert red["model_name"] == "m" and red["model_version"] == "3" and red["idempotencyKey"] == "k"
    for k in ("api_token", "ClientSecret", "password", "access_key"):
        assert red[k] == REDACTED
    assert red["nested"]["credentials"] == REDACTED
    assert params["api_token"] == "t0k"  # the input is not modified
    assert sorted(secret_values(params)) == ["AKIA", "pw1", "s3c", "t0k"]
    assert redact_text("backend said: bad token t0k", ["t0k"]) == f"backend said: bad token {REDACTED}"


def test_join_backend_resolution():
    """The plan's rule (JoinConf.transform_backend) for a bare thrift-JSON join."""
    from chronon_airflow.config.loader import parse_join_thrift

    qr = load_join("search/query_relevance.v1")
    assert join_models.transform_backend(qr) == "reference"
    mixed = copy.deepcopy(load_join("risk/txn_fraud.v1"))
    mixed["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackend"] = "sagemaker"
    assert join_models.join_backends(mixed) == ["sagemaker", "reference"]
    assert join_models.transform_backend(mixed) == "sagemaker" == parse_join_thrift(mixed).transform_backend
    custom = json.loads(mixed["metaData"]["customJson"])
    mixed["metaData"]["customJson"] = json.dumps({**custom, "model_transform_backend": "reference"})
    assert join_models.transform_backend(mixed) == "reference" == parse_join_thrift(mixed).transform_backend
    assert join_models.transform_backend(mixed, "sagemaker") == "sagemaker"  # an operator's explicit backend
    with pytest.raises(InvalidConfig, match="no model on backend 'vertex'"):
        join_models.transform_backend(mixed, "vertex")
    with pytest.raises(ValueError, match="has no modelTransforms"):
        join_models.transforms(load_join("search/plain_join.v1"))


def test_retry_after_parsing():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a past date: retry now
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
