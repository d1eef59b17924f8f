"""Operators for the CHIP-9 model backend calls: register models, register a join's model
transform, submit its batch job (idempotently). Waiting is ModelBatchJobSensor's job.

Every operator takes the compiled join as a thrift-JSON dict (``join=``). Only ``start_ds`` and
``end_ds`` are templated: a config's strings (SQL expressions, ``{{ ds }}`` in dependency specs)
must reach the backend verbatim, never rendered by Jinja. Secret-looking ``modelBackendParams``
are registered with Airflow's log masker and redacted from everything this module logs or returns.

Wiring (``join`` = the compiled file's content)::

    register = RegisterModelsOperator(task_id="register_models", join=join)
    transform = RegisterModelTransformOperator(task_id="register_transform", join=join)
    submit = SubmitModelBatchJobOperator(task_id="submit", join=join, start_ds="{{ ds }}", end_ds="{{ ds }}")
    wait = ModelBatchJobSensor(task_id="wait", join=join, job_id=submit.output,
                               start_ds="{{ ds }}", end_ds="{{ ds }}")
    register >> transform >> submit >> wait
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from chronon_airflow.backend import join_models
from chronon_airflow.backend.idempotency import idempotency_key, join_name
from chronon_airflow.backend.interface import BackendConflictError, BackendError, RegistrationResponse
from chronon_airflow.backend.redact import redact, redact_text, secret_values
from chronon_airflow.hooks.model_backend import ModelBackendHook

XCOM_JOB_ID = "job_id"
XCOM_IDEMPOTENCY_KEY = "idempotency_key"


def mask_config_secrets(config: dict[str, Any]) -> list[str]:
    """Register secret-looking values of a config with Airflow's masker so no log line shows them."""
    from airflow.sdk.log import mask_secret

    secrets = secret_values(config)
    for value in secrets:
        mask_secret(value)
    return secrets


def backend_failure(call: str, backend: str, error: BackendError, secrets: list[str]) -> AirflowException:
    """Transient failures stay retryable by Airflow's task retries; 4xx answers fail the task for good."""
    message = redact_text(f"{call} on model backend {backend!r} failed: {error.message}", secrets)
    return AirflowException(message) if error.transient else AirflowFailException(message)


def _check_join(join: Any) -> dict[str, Any]:
    if not isinstance(join, dict):
        raise TypeError(f"join must be the compiled join's thrift-JSON dict, got {type(join).__name__}")
    join_name(join)  # fails early with a clear message when metaData.name is missing
    join_models.transforms(join)
    return join


class RegisterModelOperator(BaseOperator):
    """``registerModel(model)`` for one Model (thrift-JSON dict) on its own backend.

    XCom ``return_value``: ``{"model", "backend", "isSuccess", "status", "message"}``. A rejected
    model fails the task without retries: re-running cannot change a validation verdict.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8d5f5"

    def __init__(self, *, model: dict[str, Any], model_backend_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.model = model
        self.backend = join_models.model_backend(model)
        self.model_backend_conn_id = model_backend_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        secrets = mask_config_secrets(self.model)
        result = register_model(self.model, self.backend, self.model_backend_conn_id, secrets, self.log)
        if not result["isSuccess"]:
            raise AirflowFailException(f"model {result['model']} rejected by backend {self.backend!r}: "
                                       f"{result['message']}")
        return result


def register_model(model: dict[str, Any], backend: str, conn_id: str | None, secrets: list[str],
                   log: Any) -> dict[str, Any]:
    name = join_models.model_name(model)
    log.info("registerModel %s on backend %r (params %s)", name, backend,
             redact((model.get("inferenceSpec") or {}).get("modelBackendParams") or {}))
    with ModelBackendHook(backend, conn_id).get_conn() as client:
        try:
            response: RegistrationResponse = client.register_model(model)
        except BackendError as e:
            raise backend_failure("registerModel", backend, e, secrets) from e
    message = redact_text(response.message, secrets)
    log.info("registerModel %s: %s %s", name, response.status, message)
    return {"model": name, "backend": backend, "isSuccess": response.is_success, "status": response.status,
            "message": message}


class RegisterModelsOperator(BaseOperator):
    """``registerModel`` for every model of a join, each on its own backend's connection.

    ``model_backend_conn_ids`` optionally maps backend name -> connection id (default: the settings
    convention). All models are tried; the task fails afterwards if any was rejected, naming each.
    XCom ``return_value``: a list of the per-model results (see RegisterModelOperator).
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8d5f5"

    def __init__(self, *, join: dict[str, Any], model_backend_conn_ids: dict[str, str] | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.join = _check_join(join)
        self.model_backend_conn_ids = dict(model_backend_conn_ids or {})

    def execute(self, context: Any) -> list[dict[str, Any]]:
        secrets = mask_config_secrets(self.join)
        results = []
        for model in join_models.models(self.join):
            backend = join_models.model_backend(model)
            results.append(register_model(model, backend, self.model_backend_conn_ids.get(backend), secrets,
                                          self.log))
        rejected = [r for r in results if not r["isSuccess"]]
        if rejected:
            raise AirflowFailException("; ".join(f"model {r['model']} rejected by backend {r['backend']!r}: "
                                                 f"{r['message']}" for r in rejected))
        return results


class _JoinBackendOperator(BaseOperator):
    """Shared by the join-level calls: the join, its backend and that backend's connection."""

    template_fields: Sequence[str] = ()
    ui_color = "#d5e8f5"

    def __init__(self, *, join: dict[str, Any], backend: str | None = None,
                 model_backend_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.join = _check_join(join)
        self.backend = join_models.resolve_join_backend(join, backend)
        self.model_backend_conn_id = model_backend_conn_id

    @property
    def join_name(self) -> str:
        return join_name(self.join)

    def hook(self) -> ModelBackendHook:
        return ModelBackendHook(self.backend, self.model_backend_conn_id)


class RegisterModelTransformOperator(_JoinBackendOperator):
    """``registerModelTransform(join)`` on the join's backend. XCom ``return_value``:
    ``{"join", "backend", "isSuccess", "status", "message"}``; a rejection fails the task (no retry)."""

    def execute(self, context: Any) -> dict[str, Any]:
        secrets = mask_config_secrets(self.join)
        with self.hook().get_conn() as client:
            try:
                response = client.register_model_transform(self.join)
            except BackendError as e:
                raise backend_failure("registerModelTransform", self.backend, e, secrets) from e
        message = redact_text(response.message, secrets)
        self.log.info("registerModelTransform %s: %s %s", self.join_name, response.status, message)
        if not response.is_success:
            raise AirflowFailException(f"model transform of join {self.join_name} rejected by backend "
                                       f"{self.backend!r}: {message}")
        return {"join": self.join_name, "backend": self.backend, "isSuccess": True, "status": response.status,
                "message": message}


class SubmitModelBatchJobOperator(_JoinBackendOperator):
    """``runModelBatchJob(join, start_ds, end_ds)`` with a deterministic idempotency key, so a task
    retry (or a second run of the same range) gets the job already started instead of a new one.

    XCom: ``return_value`` and ``job_id`` = the job id; ``idempotency_key`` = the key sent.
    """

    template_fields: Sequence[str] = ("start_ds", "end_ds")

    def __init__(self, *, join: dict[str, Any], start_ds: str, end_ds: str, **kwargs: Any):
        super().__init__(join=join, **kwargs)
        self.start_ds = start_ds
        self.end_ds = end_ds

    def execute(self, context: Any) -> str:
        secrets = mask_config_secrets(self.join)
        key = idempotency_key(self.join, self.start_ds, self.end_ds)
        self.log.info("runModelBatchJob %s [%s, %s] on backend %r, idempotency key %s", self.join_name,
                      self.start_ds, self.end_ds, self.backend, key)
        with self.hook().get_conn() as client:
            try:
                job_id = client.run_model_batch_job(self.join, self.start_ds, self.end_ds, key)
            except BackendConflictError as e:
                raise AirflowFailException(redact_text(
                    f"backend {self.backend!r} refused the batch job of join {self.join_name}: {e.message}",
                    secrets)) from e
            except BackendError as e:
                raise backend_failure("runModelBatchJob", self.backend, e, secrets) from e
        self.log.info("model batch job of %s: %s", self.join_name, job_id)
        ti = context["ti"]
        ti.xcom_push(key=XCOM_JOB_ID, value=job_id)
        ti.xcom_push(key=XCOM_IDEMPOTENCY_KEY, value=key)
        return job_id
