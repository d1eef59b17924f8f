"""ModelBatchJobTrigger: polls ``getModelBatchJobStatus`` from the triggerer until the job ends.

It lives in the installed package (the triggerer imports it by the path ``serialize()`` returns).
Transient poll errors (connection problems, 5xx/429 after the client's own retries) are tolerated
up to ``max_consecutive_errors`` in a row; a 404 or other 4xx is final. The deadline is an absolute
epoch time fixed when the sensor deferred, so a triggerer restart does not extend it. The first poll
comes one interval after the start (:mod:`chronon_airflow.triggers.pacing` says why).
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from chronon_airflow.backend.interface import SUCCEEDED, BackendError
from chronon_airflow.triggers.pacing import past, until_next_poll

# Event "status" values the sensor's execute_complete understands.
EVENT_SUCCESS = "success"
EVENT_FAILED = "failed"  # the job ended FAILED/CANCELLED
EVENT_ERROR = "error"  # polling itself failed (404, too many transient errors, no connection)
EVENT_TIMEOUT = "timeout"


class ModelBatchJobTrigger(BaseTrigger):
    def __init__(self, job_id: str, start_ds: str, end_ds: str, *, backend: str | None = None,
                 model_backend_conn_id: str | None = None, poll_interval: float = 30.0,
                 max_consecutive_errors: int = 5, deadline: float | None = None):
        super().__init__()
        self.job_id = job_id
        self.start_ds = start_ds
        self.end_ds = end_ds
        self.backend = backend
        self.model_backend_conn_id = model_backend_conn_id
        self.poll_interval = poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Only ids and numbers: the connection (and its token) is resolved again inside run().
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "start_ds": self.start_ds,
                "end_ds": self.end_ds,
                "backend": self.backend,
                "model_backend_conn_id": self.model_backend_conn_id,
                "poll_interval": self.poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "deadline": self.deadline,
            },
        )

    def _event(self, status: str, message: str, job_status: str | None = None) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_id": self.job_id, "job_status": job_status, "message": message})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from chronon_airflow.hooks.model_backend import ModelBackendHook

        try:
            client = await ModelBackendHook(self.backend, self.model_backend_conn_id).aget_conn()
        except Exception as e:  # no connection / bad connection: a clear, final error for the task
            yield self._event(EVENT_ERROR, str(e))
            return
        errors = 0
        try:
            while True:
                await until_next_poll(self.poll_interval, self.deadline)  # not at once: see pacing.py
                try:
                    status = await client.get_model_batch_job_status(self.job_id, self.start_ds, self.end_ds)
                except BackendError as e:
                    if not e.transient:
                        yield self._event(EVENT_ERROR, f"polling job {self.job_id} failed: {e}")
                        return
                    errors += 1
                    self.log.warning("poll %d/%d of job %s failed: %s", errors, self.max_consecutive_errors,
                                     self.job_id, e)
                    if errors >= self.max_consecutive_errors:
                        yield self._event(EVENT_ERROR, f"gave up on job {self.job_id} after {errors} consecutive "
                                                       f"poll errors; last: {e}")
                        return
                else:
                    errors = 0
                    if status.is_terminal:
                        kind = EVENT_SUCCESS if status.status == SUCCEEDED else EVENT_FAILED
                        yield self._event(kind, status.message, status.status)
                        return
                    self.log.info("job %s is %s: %s", self.job_id, status.status, status.message)
                if past(self.deadline):
                    yield self._event(EVENT_TIMEOUT, f"job {self.job_id} did not finish before the timeout; "
                                                     "it may still be running on the backend")
                    return
        finally:
            await client.aclose()
