"""The one CHIP-9 registration routine: same calls, order, outcome and redaction, sync and async."""
from __future__ import annotations

import asyncio
import contextlib
import copy

import pytest

from chronon_airflow.backend import registration
from chronon_airflow.backend.interface import RegistrationResponse
from chronon_airflow.backend.redact import REDACTED
from chronon_airflow.exceptions import BackendError
from tests.support.backend import load_join

SECRET = "sk-live-REGISTRATION-4242"


def _join_with_secret() -> dict:
    join = copy.deepcopy(load_join("risk/txn_fraud.v1"))
    join["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]["api_key"] = SECRET
    return join


class Backend:
    """A fake backend: records every call, answers from ``verdicts`` (model/join name -> response or error)."""

    def __init__(self, name: str, calls: list, verdicts: dict | None = None):
        self.name, self.calls, self.verdicts = name, calls, verdicts or {}

    def _answer(self, call: str, subject: str):
        self.calls.append((call, subject, self.name))
        verdict = self.verdicts.get(subject, RegistrationResponse(True, "REGISTERED", f"{subject} ok"))
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    def register_model(self, model):
        return self._answer("registerModel", model["metaData"]["name"])

    def register_model_transform(self, join):
        return self._answer("registerModelTransform", join["metaData"]["name"])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class AsyncBackend(Backend):
    async def register_model(self, model):
        await asyncio.sleep(0)
        return super().register_model(model)

    async def register_model_transform(self, join):
        await asyncio.sleep(0)
        return super().register_model_transform(join)


def _both(join: dict, transform_backend: str, verdicts: dict | None = None):
    """The sync and the async routine on the same join and backend answers: (calls, results) each."""
    sync_calls: list = []
    sync = registration.register_join(join, transform_backend,
                                      lambda b: Backend(b, sync_calls, verdicts))
    async_calls: list = []
    clients = {b: AsyncBackend(b, async_calls, verdicts) for b in ("reference", "sagemaker")}
    gate = asyncio.Semaphore(1)
    asyncio_results = asyncio.run(registration.aregister_join(join, transform_backend, clients, gate))
    return (sync_calls, sync), (async_calls, asyncio_results)


def test_models_in_order_then_the_transform_on_the_given_backend():
    join = load_join("risk/txn_fraud.v1")
    join["modelTransforms"]["transforms"][1]["model"]["inferenceSpec"]["modelBackend"] = "sagemaker"
    (sync_calls, sync), (async_calls, asyncio_results) = _both(join, "sagemaker")
    expected = [("registerModel", "fraud_scorer", "reference"), ("registerModel", "merchant_embedder", "sagemaker"),
                ("registerModelTransform", "risk.txn_fraud.v1", "sagemaker")]
    assert sync_calls == expected and sorted(async_calls) == sorted(expected)
    assert async_calls[-1] == expected[-1]  # the transform after every model
    assert sync == asyncio_results and all(r.ok for r in sync)
    assert str(sync[0]) == "registerModel fraud_scorer on reference: REGISTERED fraud_scorer ok"


def test_a_rejected_model_skips_the_transform():
    verdicts = {"fraud_scorer": RegistrationResponse(False, "REJECTED", "unknown model")}
    (sync_calls, sync), (async_calls, asyncio_results) = _both(load_join("risk/txn_fraud.v1"), "reference", verdicts)
    assert [c[0] for c in sync_calls] == ["registerModel", "registerModel"]
    assert sorted(c[0] for c in async_calls) == ["registerModel", "registerModel"]
    assert sync == asyncio_results
    assert [r.ok for r in sync] == [False, True] and not sync[0].error


@pytest.mark.parametrize("error, transient", [
    (BackendError("answered HTTP 400: bad params", status_code=400), False),
    (BackendError("answered HTTP 503", status_code=503, transient=True), True),
    (ConnectionResetError("reset by peer"), True),
    (KeyError("isSuccess"), True),
])
def test_a_failed_call_is_a_result_not_an_exception(error, transient):
    (_, sync), (_, asyncio_results) = _both(load_join("risk/txn_fraud.v1"), "reference", {"merchant_embedder": error})
    assert sync == asyncio_results and len(sync) == 2  # no transform after a failed model
    failed = sync[1]
    assert failed.error and not failed.ok and failed.transient is transient
    assert str(failed).startswith("registerModel merchant_embedder on reference failed: ")


def test_one_redaction_for_every_message_sync_and_async():
    """A backend echoing a secret of the config it was sent: the same ``***`` in every variant,
    for a verdict and for an error."""
    join = _join_with_secret()
    verdicts = {"fraud_scorer": RegistrationResponse(False, "REJECTED", f"bad api_key {SECRET}")}
    (_, sync), (_, asyncio_results) = _both(join, "reference", verdicts)
    assert sync == asyncio_results
    assert sync[0].message == f"bad api_key {REDACTED}" and SECRET not in str(sync)

    verdicts = {"fraud_scorer": BackendError(f"HTTP 422: api_key={SECRET} refused", status_code=422)}
    (_, sync), (_, asyncio_results) = _both(join, "reference", verdicts)
    assert sync == asyncio_results and SECRET not in str(sync[0]) and REDACTED in sync[0].message

    # The transform call redacts with the join's secrets (it sends the whole join).
    verdicts = {"risk.txn_fraud.v1": RegistrationResponse(False, "REJECTED", f"join has {SECRET}")}
    (_, sync), (_, asyncio_results) = _both(join, "reference", verdicts)
    assert sync == asyncio_results and sync[-1].message == f"join has {REDACTED}"


def test_single_calls_match_the_join_routine():
    join = _join_with_secret()
    model = join["modelTransforms"]["transforms"][0]["model"]
    calls: list = []
    verdicts = {"fraud_scorer": RegistrationResponse(False, "REJECTED", SECRET)}
    one = registration.register_model(Backend("reference", calls, verdicts), model)
    assert one == registration.register_join(join, "reference", lambda b: Backend(b, [], verdicts))[0]
    transform = registration.register_model_transform(Backend("reference", calls), join, "reference")
    assert transform.ok and transform.subject == "risk.txn_fraud.v1" and transform.backend == "reference"


def test_clients_are_closed_after_each_call():
    closed = []

    @contextlib.contextmanager
    def client_for(backend):
        yield Backend(backend, [])
        closed.append(backend)

    registration.register_join(load_join("risk/txn_fraud.v1"), "reference", client_for)
    assert closed == ["reference"] * 3
