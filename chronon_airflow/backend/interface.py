"""The CHIP-9 model backend API as Python types.

CHIP-9 defines five calls a model backend serves; :class:`ModelBackend` (blocking, for operators and
the CLI) and :class:`AsyncModelBackend` (for the triggerer's event loop) name them in Python style.
Configs travel as their thrift-JSON dicts (the content of a compiled ``production/`` file), exactly
as they go over the wire, so no call depends on a particular config loader.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

# The backend errors are defined with every other error of the package; the clients raise them.
from chronon_airflow.exceptions import BackendConflictError, BackendError, BackendNotFoundError

__all__ = [
    "CANCELLED", "FAILED", "JOB_STATUSES", "PENDING", "RUNNING", "SUCCEEDED", "TERMINAL_STATUSES",
    "AsyncModelBackend", "BackendConflictError", "BackendError", "BackendNotFoundError", "JobStatus",
    "ModelBackend", "RegistrationResponse",
]

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
JOB_STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass(frozen=True)
class RegistrationResponse:
    """Answer to ``registerModel`` / ``registerModelTransform``: a validation verdict."""

    is_success: bool
    status: str
    message: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RegistrationResponse:
        return cls(is_success=bool(data["isSuccess"]), status=str(data.get("status", "")),
                   message=str(data.get("message") or ""))


@dataclass(frozen=True)
class JobStatus:
    """Answer to ``getModelBatchJobStatus``."""

    status: str
    is_success: bool
    message: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobStatus:
        status = str(data["status"])
        if status not in JOB_STATUSES:
            raise BackendError(f"backend answered an unknown job status {status!r}; expected one of {JOB_STATUSES}")
        return cls(status=status, is_success=bool(data.get("isSuccess", False)), message=str(data.get("message") or ""))


class ModelBackend(abc.ABC):
    """Blocking client for the five CHIP-9 calls."""

    @abc.abstractmethod
    def register_model(self, model: dict[str, Any]) -> RegistrationResponse:
        """``registerModel(model)``: validate and register one Model (thrift JSON)."""

    @abc.abstractmethod
    def register_model_transform(self, join: dict[str, Any]) -> RegistrationResponse:
        """``registerModelTransform(join)``: validate the join's ``modelTransforms`` against its models."""

    @abc.abstractmethod
    def run_model_batch_job(self, join: dict[str, Any], start_ds: str, end_ds: str, idempotency_key: str) -> str:
        """``runModelBatchJob``: start (or find, for a repeated key) the batch job; returns its id."""

    @abc.abstractmethod
    def get_model_batch_job_status(self, job_id: str, start_ds: str, end_ds: str) -> JobStatus:
        """``getModelBatchJobStatus``."""

    @abc.abstractmethod
    def run_model_inference(self, join: dict[str, Any], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``runModelInference``: one output map per input map, same order."""


class AsyncModelBackend(abc.ABC):
    """The same calls for an asyncio event loop (the triggerer must never block its loop)."""

    @abc.abstractmethod
    async def register_model(self, model: dict[str, Any]) -> RegistrationResponse: ...

    @abc.abstractmethod
    async def register_model_transform(self, join: dict[str, Any]) -> RegistrationResponse: ...

    @abc.abstractmethod
    async def run_model_batch_job(self, join: dict[str, Any], start_ds: str, end_ds: str,
                                  idempotency_key: str) -> str: ...

    @abc.abstractmethod
    async def get_model_batch_job_status(self, job_id: str, start_ds: str, end_ds: str) -> JobStatus: ...

    @abc.abstractmethod
    async def run_model_inference(self, join: dict[str, Any], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook: backends without pooled connections keep the no-op
        """Release pooled connections."""
