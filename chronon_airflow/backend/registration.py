"""CHIP-9 registration: ``registerModel`` for each of a join's models, then ``registerModelTransform``.

The one routine behind every registration: the register operators (one model, or one join's
transform: :mod:`chronon_airflow.operators.model_backend`), the team metadata upload (many joins at
once on asyncio: :mod:`chronon_airflow.operators.metadata_upload`) and ``chronon-airflow register``.
Sync and async variants share everything but the awaiting, so all of them send the same calls in
the same order and report them the same way:

* the models in transform order, each once, each on its own backend (``inferenceSpec.modelBackend``);
* then the model transform, on the backend the caller names (the join's transform backend: the
  plan's ``backend``, i.e. :attr:`chronon_airflow.config.model.JoinConf.transform_backend`), and only
  when every model was accepted: a transform cannot validate against models the backend rejected;
* one redaction: every message that leaves here (the backend's verdict or an error) has the
  secret-looking values of the config that call sent (the model for ``registerModel``, the join for
  ``registerModelTransform``; see :mod:`chronon_airflow.backend.redact`) replaced by ``***``.

A failed call does not raise: it is a :class:`Registration` with ``error`` set (``transient`` when a
later retry may succeed: 5xx, 429, connection trouble), so the team upload carries on with the other
joins and an operator chooses between a retry and a final failure. Pure Python, no Airflow import.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chronon_airflow.backend import join_models
from chronon_airflow.backend.interface import AsyncModelBackend, ModelBackend, RegistrationResponse
from chronon_airflow.backend.redact import redact_text, secret_values
from chronon_airflow.exceptions import BackendError

REGISTER_MODEL = "registerModel"
REGISTER_MODEL_TRANSFORM = "registerModelTransform"


@dataclass(frozen=True)
class Registration:
    """The outcome of one registration call. ``message`` is already redacted."""

    call: str  # REGISTER_MODEL or REGISTER_MODEL_TRANSFORM
    subject: str  # the model's name, or the join's
    backend: str
    is_success: bool
    status: str = ""
    message: str = ""
    error: bool = False  # the call failed without a verdict; ``message`` says why
    transient: bool = False  # ...and a later retry may succeed

    @property
    def ok(self) -> bool:
        return self.is_success and not self.error

    def __str__(self) -> str:
        if self.error:
            return f"{self.call} {self.subject} on {self.backend} failed: {self.message}"
        return f"{self.call} {self.subject} on {self.backend}: {self.status} {self.message}".rstrip()


def _verdict(call: str, subject: str, backend: str, response: RegistrationResponse,
             config: Mapping[str, Any]) -> Registration:
    return Registration(call, subject, backend, response.is_success, response.status,
                        redact_text(response.message, secret_values(config)))


def _failure(call: str, subject: str, backend: str, error: Exception, config: Mapping[str, Any]) -> Registration:
    if isinstance(error, BackendError):
        text, transient = error.message, error.transient
    else:  # connection trouble or an answer we could not read: worth another try
        text, transient = f"{type(error).__name__}: {error}", True
    return Registration(call, subject, backend, False, message=redact_text(text, secret_values(config)),
                        error=True, transient=transient)


def _model_step(model: dict[str, Any]) -> tuple[str, str, str]:
    return REGISTER_MODEL, join_models.model_name(model), join_models.model_backend(model)


def _transform_step(join: dict[str, Any], backend: str) -> tuple[str, str, str]:
    return REGISTER_MODEL_TRANSFORM, join_models.join_name(join), backend


# -- blocking ----------------------------------------------------------------------------------------

def register_model(client: ModelBackend, model: dict[str, Any]) -> Registration:
    """``registerModel(model)`` on ``client`` (the model's own backend)."""
    call, subject, backend = _model_step(model)
    try:
        return _verdict(call, subject, backend, client.register_model(model), model)
    except Exception as e:
        return _failure(call, subject, backend, e, model)


def register_model_transform(client: ModelBackend, join: dict[str, Any], backend: str) -> Registration:
    """``registerModelTransform(join)`` on ``client``, the join's transform ``backend``."""
    call, subject, _ = _transform_step(join, backend)
    try:
        return _verdict(call, subject, backend, client.register_model_transform(join), join)
    except Exception as e:
        return _failure(call, subject, backend, e, join)


def register_join(join: dict[str, Any], transform_backend: str,
                  client_for: Callable[[str], contextlib.AbstractContextManager[ModelBackend]]) -> list[Registration]:
    """Every model of ``join``, then its transform on ``transform_backend`` (only when every model
    was accepted). ``client_for(backend)`` gives a client to use in a ``with`` block."""
    results = []
    for model in join_models.models(join):
        with client_for(join_models.model_backend(model)) as client:
            results.append(register_model(client, model))
    if all(r.ok for r in results):
        with client_for(transform_backend) as client:
            results.append(register_model_transform(client, join, transform_backend))
    return results


# -- asyncio -----------------------------------------------------------------------------------------

async def _gated(gate: asyncio.Semaphore | None, make: Callable[[], Awaitable[RegistrationResponse]]
                 ) -> RegistrationResponse:
    async with gate if gate is not None else contextlib.nullcontext():
        return await make()


async def aregister_model(client: AsyncModelBackend, model: dict[str, Any],
                          gate: asyncio.Semaphore | None = None) -> Registration:
    call, subject, backend = _model_step(model)
    try:
        return _verdict(call, subject, backend, await _gated(gate, lambda: client.register_model(model)), model)
    except Exception as e:
        return _failure(call, subject, backend, e, model)


async def aregister_model_transform(client: AsyncModelBackend, join: dict[str, Any], backend: str,
                                    gate: asyncio.Semaphore | None = None) -> Registration:
    call, subject, _ = _transform_step(join, backend)
    try:
        return _verdict(call, subject, backend,
                        await _gated(gate, lambda: client.register_model_transform(join)), join)
    except Exception as e:
        return _failure(call, subject, backend, e, join)


async def aregister_join(join: dict[str, Any], transform_backend: str, clients: Mapping[str, AsyncModelBackend],
                         gate: asyncio.Semaphore | None = None) -> list[Registration]:
    """:func:`register_join` on asyncio: the models concurrently, then the transform. ``clients``
    maps each backend name to its client; ``gate`` bounds the calls in flight across joins."""
    models = join_models.models(join)
    results = list(await asyncio.gather(
        *(aregister_model(clients[join_models.model_backend(m)], m, gate) for m in models)))
    if all(r.ok for r in results):
        results.append(await aregister_model_transform(clients[transform_backend], join, transform_backend, gate))
    return results
