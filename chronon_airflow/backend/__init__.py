"""Client side of the CHIP-9 model backend contract. Pure Python: no Airflow imports here, so the
CLI, the trigger (running in the triggerer) and the reference backend's tests can all use it."""
from chronon_airflow.backend.interface import (
    JOB_STATUSES,
    TERMINAL_STATUSES,
    AsyncModelBackend,
    BackendConflictError,
    BackendError,
    BackendNotFoundError,
    JobStatus,
    ModelBackend,
    RegistrationResponse,
)

__all__ = [
    "JOB_STATUSES",
    "TERMINAL_STATUSES",
    "AsyncModelBackend",
    "BackendConflictError",
    "BackendError",
    "BackendNotFoundError",
    "JobStatus",
    "ModelBackend",
    "RegistrationResponse",
]
