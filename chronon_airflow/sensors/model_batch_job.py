"""ModelBatchJobSensor: wait for a model batch job to end, deferrable by default.

Deferrable: one status check in the worker (a job that is already finished ends the task at once),
then the slot is released to ModelBatchJobTrigger in the triggerer. ``deferrable=False``: classic
poke/reschedule mode, with the same bound on consecutive transient errors.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from chronon_airflow.backend import join_models
from chronon_airflow.backend.interface import SUCCEEDED, BackendError, JobStatus
from chronon_airflow.hooks.model_backend import ModelBackendHook
from chronon_airflow.lineage import ChrononLineageMixin
from chronon_airflow.links.model_backend import ModelBackendJobLink
from chronon_airflow.triggers import model_batch_job as trig


class ModelBatchJobSensor(ChrononLineageMixin, BaseSensorOperator):
    """Wait for ``job_id`` (usually ``submit.output``) covering ``[start_ds, end_ds]``.

    The backend comes from ``backend``, else from ``join`` (its transform backend:
    ``customJson.model_transform_backend``, else its first model's), else ``model_backend_conn_id``
    names the connection directly. Fails with the backend's message on
    FAILED/CANCELLED; gives up after ``max_consecutive_errors`` transient poll errors in a row.
    """

    template_fields: Sequence[str] = ("job_id", "start_ds", "end_ds")
    ui_color = "#f5e8d5"
    operator_extra_links = (ModelBackendJobLink(),)

    def __init__(self, *, job_id: str, start_ds: str, end_ds: str, join: dict[str, Any] | None = None,
                 backend: str | None = None, model_backend_conn_id: str | None = None, deferrable: bool = True,
                 max_consecutive_errors: int = 5, poke_interval: float = 30.0, **kwargs: Any):
        super().__init__(poke_interval=poke_interval, **kwargs)
        if join is not None:  # the plan passes its backend; a bare join gets the same rule
            backend = join_models.transform_backend(join, backend)
        if not backend and not model_backend_conn_id:
            raise ValueError("ModelBatchJobSensor needs join=, backend= or model_backend_conn_id=")
        self.job_id = job_id
        self.start_ds = start_ds
        self.end_ds = end_ds
        self.backend = backend
        self.model_backend_conn_id = model_backend_conn_id
        self.deferrable = deferrable
        self.max_consecutive_errors = max_consecutive_errors
        self._errors = 0

    def _hook(self) -> ModelBackendHook:
        return ModelBackendHook(self.backend, self.model_backend_conn_id)

    def _mark_outlets(self, context: Any) -> None:
        """Each outlet (the model output table) gets the written partition range in its asset
        event's extra: downstream asset-triggered DAGs read their partitions from it."""
        extra = {"start_ds": self.start_ds, "end_ds": self.end_ds, "job_id": self.job_id}
        for outlet in self.outlets or ():
            context["outlet_events"][outlet].extra = dict(extra)

    def _check(self, status: JobStatus) -> bool:
        if status.status == SUCCEEDED:
            self.log.info("model batch job %s succeeded: %s", self.job_id, status.message)
            return True
        if status.is_terminal:
            raise AirflowFailException(f"model batch job {self.job_id} {status.status}: {status.message}")
        self.log.info("model batch job %s is %s: %s", self.job_id, status.status, status.message)
        return False

    def poke(self, context: Any) -> bool:
        with self._hook().get_conn() as client:
            try:
                status = client.get_model_batch_job_status(self.job_id, self.start_ds, self.end_ds)
            except BackendError as e:
                if not e.transient:
                    raise AirflowFailException(f"polling model batch job {self.job_id} failed: {e}") from e
                self._errors += 1
                if self._errors >= self.max_consecutive_errors:
                    raise AirflowException(f"gave up on model batch job {self.job_id} after {self._errors} "
                                           f"consecutive poll errors; last: {e}") from e
                self.log.warning("poll %d/%d failed: %s", self._errors, self.max_consecutive_errors, e)
                return False
        self._errors = 0
        return self._check(status)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            result = super().execute(context)
            self._mark_outlets(context)
            return result
        try:
            if self.poke(context):
                self._mark_outlets(context)
                return None
        except AirflowFailException:
            raise
        except AirflowException as e:
            # Polling trouble right now is no reason to fail: the trigger retries with its own bound.
            self.log.warning("first status check failed, deferring anyway: %s", e)
        self.defer(
            trigger=trig.ModelBatchJobTrigger(
                job_id=self.job_id, start_ds=self.start_ds, end_ds=self.end_ds, backend=self.backend,
                model_backend_conn_id=self.model_backend_conn_id, poll_interval=self.poke_interval,
                max_consecutive_errors=self.max_consecutive_errors, deadline=time.time() + self.timeout),
            method_name="execute_complete",
            # A little slack over the trigger's own deadline, so its clearer timeout event wins.
            timeout=timedelta(seconds=self.timeout + max(60.0, self.poke_interval)),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if not event:
            raise AirflowException(f"trigger for model batch job {self.job_id} returned no event")
        status, message = event.get("status"), event.get("message", "")
        if status == trig.EVENT_SUCCESS:
            self.log.info("model batch job %s succeeded: %s", self.job_id, message)
            self._mark_outlets(context)
            return None
        if status == trig.EVENT_FAILED:
            raise AirflowFailException(f"model batch job {self.job_id} {event.get('job_status')}: {message}")
        if status == trig.EVENT_TIMEOUT:
            raise AirflowSensorTimeout(message)
        raise AirflowException(message or f"model batch job {self.job_id}: unexpected trigger event {event}")
