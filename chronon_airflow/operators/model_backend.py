"""Operators for the CHIP-9 model backend calls: register models, register a join's model
transform, and run its batch job: :class:`ModelBatchInferenceOperator` submits it (idempotently)
and waits for it, deferred, in one task, so that a retry submits again. (The separate
:class:`SubmitModelBatchJobOperator` and ``ModelBatchJobSensor`` remain for hand-wired DAGs: there,
retrying the wait re-polls the same job, and recovering from a FAILED job needs clearing the submit.)

Every operator takes the compiled join as a thrift-JSON dict (``join=``). Only ``start_ds`` and
``end_ds`` are templated (left out, they are the run's partition range,
:func:`chronon_airflow.partitions.task_range`): a config's strings (SQL expressions, ``{{ ds }}`` in dependency specs)
must reach the backend verbatim, never rendered by Jinja. Secret-looking ``modelBackendParams``
are registered with Airflow's log masker and redacted from everything this module logs or returns.

Wiring (``join`` = the compiled file's content)::

    register = RegisterModelsOperator(task_id="register_models", join=join)
    transform = RegisterModelTransformOperator(task_id="register_transform", join=join)
    run = ModelBatchInferenceOperator(task_id="wait_for_batch_inference", join=join)  # the run's range
    register >> transform >> run
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from chronon_airflow.backend import join_models, registration
from chronon_airflow.backend.idempotency import idempotency_key, join_name
from chronon_airflow.backend.interface import SUCCEEDED, BackendConflictError, BackendError
from chronon_airflow.backend.redact import redact, redact_text, secret_values
from chronon_airflow.hooks.model_backend import ModelBackendHook
from chronon_airflow.lineage import ChrononLineageMixin
from chronon_airflow.links.model_backend import JOB_ID_XCOM_KEY, JOB_URL_XCOM_KEY, ModelBackendJobLink, push_job
from chronon_airflow.partitions import task_range
from chronon_airflow.triggers import model_batch_job as trig

XCOM_JOB_ID = JOB_ID_XCOM_KEY
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


class RegisterModelOperator(ChrononLineageMixin, BaseOperator):
    """``registerModel(model)`` for one Model (thrift-JSON dict) on its own backend.

    XCom ``return_value``: ``{"model", "backend", "isSuccess", "status", "message"}``. A rejected
    model fails the task without retries: re-running cannot change a validation verdict.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8d5f5"

    def __init__(self, *, model: dict[str, Any], model_backend_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._set_task_args(model=model)
        self.model_backend_conn_id = model_backend_conn_id

    def _set_task_args(self, *, model: dict[str, Any]) -> None:
        """The model (also how the render layer makes a copy of this task another task,
        :mod:`chronon_airflow.render.prototypes`)."""
        self.model = model
        self.backend = join_models.model_backend(model)

    def execute(self, context: Any) -> dict[str, Any]:
        mask_config_secrets(self.model)
        result = register_model(self.model, self.backend, self.model_backend_conn_id, self.log)
        if not result["isSuccess"]:
            raise AirflowFailException(f"model {result['model']} rejected by backend {self.backend!r}: "
                                       f"{result['message']}")
        return result


def registration_failure(r: registration.Registration) -> AirflowException:
    """A registration call that failed without a verdict: retryable when transient, else final."""
    return AirflowException(str(r)) if r.transient else AirflowFailException(str(r))


def register_model(model: dict[str, Any], backend: str, conn_id: str | None, log: Any) -> dict[str, Any]:
    """``registerModel`` through the one registration routine (:mod:`chronon_airflow.backend.registration`)."""
    name = join_models.model_name(model)
    log.info("registerModel %s on backend %r (params %s)", name, backend,
             redact((model.get("inferenceSpec") or {}).get("modelBackendParams") or {}))
    with ModelBackendHook(backend, conn_id).get_conn() as client:
        r = registration.register_model(client, model)
    if r.error:
        raise registration_failure(r)
    log.info("%s", r)
    return {"model": name, "backend": backend, "isSuccess": r.is_success, "status": r.status, "message": r.message}


class RegisterModelsOperator(ChrononLineageMixin, BaseOperator):
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
        mask_config_secrets(self.join)
        results = []
        for model in join_models.models(self.join):
            backend = join_models.model_backend(model)
            results.append(register_model(model, backend, self.model_backend_conn_ids.get(backend), self.log))
        rejected = [r for r in results if not r["isSuccess"]]
        if rejected:
            raise AirflowFailException("; ".join(f"model {r['model']} rejected by backend {r['backend']!r}: "
                                                 f"{r['message']}" for r in rejected))
        return results


class _JoinBackendOperator(ChrononLineageMixin, BaseOperator):
    """Shared by the join-level calls: the join, its backend and that backend's connection."""

    template_fields: Sequence[str] = ()
    ui_color = "#d5e8f5"

    def __init__(self, *, join: dict[str, Any], backend: str | None = None,
                 model_backend_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._set_task_args(join=join, backend=backend)
        self.model_backend_conn_id = model_backend_conn_id

    def _set_task_args(self, *, join: dict[str, Any], backend: str | None = None) -> None:
        """The join and its backend (also how the render layer makes a copy of this task another
        task, :mod:`chronon_airflow.render.prototypes`)."""
        self.join = _check_join(join)
        # The plan passes its backend (JoinConf.transform_backend); a hand-wired join gets the same rule.
        self.backend = join_models.transform_backend(join, backend)

    @property
    def join_name(self) -> str:
        return join_name(self.join)

    def hook(self) -> ModelBackendHook:
        return ModelBackendHook(self.backend, self.model_backend_conn_id)

    def _submit_batch_job(self, hook: ModelBackendHook, client: Any, context: Any, start_ds: str,
                          end_ds: str) -> str:
        """``runModelBatchJob`` under the range's idempotency key; XCom: the job (with what the
        "Model backend job" link reads, never a secret) and the key. A refusal fails the task for
        good; any other backend error fails this try."""
        secrets = mask_config_secrets(self.join)
        key = idempotency_key(self.join, start_ds, end_ds)
        self.log.info("runModelBatchJob %s [%s, %s] on backend %r, idempotency key %s", self.join_name,
                      start_ds, end_ds, self.backend, key)
        try:
            job_id = client.run_model_batch_job(self.join, start_ds, end_ds, key)
        except BackendConflictError as e:
            raise AirflowFailException(redact_text(
                f"backend {self.backend!r} refused the batch job of join {self.join_name}: {e.message}",
                secrets)) from e
        except BackendError as e:
            raise backend_failure("runModelBatchJob", self.backend, e, secrets) from e
        ti = context["ti"]
        push_job(ti, job_id, hook.model_backend_conn_id)
        ti.xcom_push(key=XCOM_IDEMPOTENCY_KEY, value=key)
        return job_id


class RegisterModelTransformOperator(_JoinBackendOperator):
    """``registerModelTransform(join)`` on the join's backend. XCom ``return_value``:
    ``{"join", "backend", "isSuccess", "status", "message"}``; a rejection fails the task (no retry)."""

    def execute(self, context: Any) -> dict[str, Any]:
        mask_config_secrets(self.join)
        with self.hook().get_conn() as client:
            r = registration.register_model_transform(client, self.join, self.backend)
        if r.error:
            raise registration_failure(r)
        self.log.info("%s", r)
        if not r.is_success:
            raise AirflowFailException(f"model transform of join {self.join_name} rejected by backend "
                                       f"{self.backend!r}: {r.message}")
        return {"join": self.join_name, "backend": self.backend, "isSuccess": True, "status": r.status,
                "message": r.message}


class SubmitModelBatchJobOperator(_JoinBackendOperator):
    """``runModelBatchJob(join, start_ds, end_ds)`` with a deterministic idempotency key, so a task
    retry (or a second run of the same range) gets the job already started instead of a new one.

    XCom: ``return_value`` and ``job_id`` = the job id; ``idempotency_key`` = the key sent.
    """

    template_fields: Sequence[str] = ("start_ds", "end_ds")

    def __init__(self, *, join: dict[str, Any], start_ds: str | None = None, end_ds: str | None = None,
                 **kwargs: Any):
        super().__init__(join=join, **kwargs)
        self.start_ds = start_ds
        self.end_ds = end_ds

    def execute(self, context: Any) -> str:
        self.start_ds, self.end_ds = task_range(self.start_ds, self.end_ds, context)
        hook = self.hook()
        with hook.get_conn() as client:
            job_id = self._submit_batch_job(hook, client, context, self.start_ds, self.end_ds)
        self.log.info("model batch job of %s: %s", self.join_name, job_id)
        return job_id


class ModelBatchInferenceOperator(_JoinBackendOperator):
    """Submit the join's model batch job for ``[start_ds, end_ds]`` and wait for it to end, deferred.

    Submit and wait are one task so that its retry (or a clear) submits again: the idempotency key
    (join name, range, hash of the model transforms) gets the job already running or succeeded, and
    a job that ended FAILED or CANCELLED is replaced by a new one (the backend's rule). A job that
    fails therefore fails this try *retryably*: the task's own retry runs a new job.

    One status check in the worker (a job that already ended finishes the task at once), then the
    wait moves to :class:`~chronon_airflow.triggers.model_batch_job.ModelBatchJobTrigger` in the
    triggerer and holds no worker slot. ``timeout``: seconds the job may take (the task then fails
    retryably; the job may still be running and a retry re-attaches to it).

    XCom: ``return_value`` and ``job_id`` = the job id, ``idempotency_key``, and what the "Model
    backend job" link reads. Each outlet (the join's output table) gets ``{"start_ds", "end_ds",
    "job_id"}`` in its asset event's extra.
    """

    template_fields: Sequence[str] = ("start_ds", "end_ds")
    ui_color = "#f5e8d5"
    operator_extra_links = (ModelBackendJobLink(),)

    def __init__(self, *, join: dict[str, Any], start_ds: str | None = None, end_ds: str | None = None,
                 poll_interval: float = 60.0,
                 timeout: float = 86400.0, max_consecutive_errors: int = 5, **kwargs: Any):
        super().__init__(join=join, **kwargs)
        self.start_ds = start_ds
        self.end_ds = end_ds
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.max_consecutive_errors = max_consecutive_errors
        self.job_id: str | None = None

    # -- what the failure e-mail shows --------------------------------------------------------

    def chronon_links(self, context: Any) -> list[tuple[str, str]]:
        """("Model backend job", URL) of the job this try submitted, when there is one."""
        job_id = self.job_id or _pull(context, JOB_ID_XCOM_KEY)
        url = _pull(context, JOB_URL_XCOM_KEY)
        return [(f"Model backend job {job_id}", url or job_id)] if job_id else []

    # -- running ------------------------------------------------------------------------------

    def execute(self, context: Any) -> str | None:
        # Dates not given (the generated DAGs give none): the run's range, here and on resuming.
        self.start_ds, self.end_ds = task_range(self.start_ds, self.end_ds, context)
        hook = self.hook()
        with hook.get_conn() as client:
            self.job_id = self._submit_batch_job(hook, client, context, self.start_ds, self.end_ds)
            self.log.info("model batch job of %s: %s (a job of this key that ended FAILED or CANCELLED is "
                          "never reused: a retry of this task runs a new one)", self.join_name, self.job_id)
            try:
                status = client.get_model_batch_job_status(self.job_id, self.start_ds, self.end_ds)
            except BackendError as e:  # polling trouble now is no reason to fail: the trigger retries
                self.log.warning("first status check of job %s failed, deferring anyway: %s", self.job_id, e)
                status = None
        if status is not None and status.is_terminal:
            return self._finish(context, trig.EVENT_SUCCESS if status.status == SUCCEEDED else trig.EVENT_FAILED,
                                status.status, status.message)
        if status is not None:
            self.log.info("model batch job %s is %s: %s", self.job_id, status.status, status.message)
        self.defer(
            trigger=trig.ModelBatchJobTrigger(
                job_id=self.job_id, start_ds=self.start_ds, end_ds=self.end_ds, backend=self.backend,
                model_backend_conn_id=self.model_backend_conn_id, poll_interval=self.poll_interval,
                max_consecutive_errors=self.max_consecutive_errors, deadline=time.time() + self.timeout),
            method_name="execute_complete",
            # A little slack over the trigger's own deadline, so its clearer timeout event wins.
            timeout=timedelta(seconds=self.timeout + max(60.0, self.poll_interval)),
        )
        return None

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> str | None:
        event = event or {}
        self.start_ds, self.end_ds = task_range(self.start_ds, self.end_ds, context)
        self.job_id = event.get("job_id") or _pull(context, JOB_ID_XCOM_KEY)
        if not event:
            raise AirflowException(f"the trigger of model batch job {self.job_id} returned no event")
        return self._finish(context, event.get("status"), event.get("job_status"), event.get("message", ""))

    def _finish(self, context: Any, outcome: str | None, job_status: str | None, message: str) -> str | None:
        secrets = secret_values(self.join)
        where = f"model batch job {self.job_id} of join {self.join_name} for {self.start_ds}..{self.end_ds}"
        if outcome == trig.EVENT_SUCCESS:
            self.log.info("%s succeeded: %s", where, message)
            extra = {"start_ds": self.start_ds, "end_ds": self.end_ds, "job_id": self.job_id}
            for outlet in self.outlets or ():
                context["outlet_events"][outlet].extra = dict(extra)
            return self.job_id
        if outcome == trig.EVENT_FAILED:
            # Retryable on purpose: the next try submits again and the backend starts a new job.
            raise AirflowException(redact_text(f"{where} ended {job_status}: {message}", secrets))
        if outcome == trig.EVENT_TIMEOUT:
            raise AirflowException(f"{where} did not end within {self.timeout:.0f}s; it may still be running "
                                   "(a retry of this task re-attaches to it)")
        raise AirflowException(redact_text(f"{where}: {message or 'unexpected trigger event'}", secrets))


def _pull(context: Any, key: str) -> Any:
    """This task instance's XCom ``key`` (``None`` when there is none or no task instance)."""
    try:
        ti = context["ti"]
        return ti.xcom_pull(task_ids=ti.task_id, key=key)
    except Exception:
        return None
