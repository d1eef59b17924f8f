"""Every error chronon-airflow raises derives from :class:`ChrononAirflowError`.

One name per kind of problem, all defined here (pure Python: the config, plan and backend layers
import this module, so it imports nothing):

* :class:`InvalidConfig` — a compiled config, ``teams.json``, ``[chronon]`` setting or deployment
  choice that cannot be used (the loader reports it as a ``ConfigError(path, field, message)`` row;
  elsewhere it is raised). There is no other name for a bad config.
* :class:`InvalidRange` — a partition range (``start_ds``/``end_ds``) that is not a valid range.
* :class:`BackendError` and its subclasses — a CHIP-9 model backend call failed (re-exported by
  :mod:`chronon_airflow.backend.interface`, where the clients raise them).

Classes defined elsewhere derive from the base too: ``ModelBackendConnectionMissing`` (hooks; also
an ``AirflowException``) and the local engine's ``NotSupportedByLocalEngine``. So ``except
ChrononAirflowError`` catches every failure of ours; ``tests/unit/test_exceptions.py`` checks it.
"""
from __future__ import annotations


class ChrononAirflowError(Exception):
    """Base class of the package's exceptions."""


class InvalidConfig(ChrononAirflowError, ValueError):
    """A config value that cannot be used. ``field`` is the dotted path into the JSON (or the
    setting / teams.json key) when known, ``""`` otherwise."""

    def __init__(self, field: str, message: str | None = None):
        if message is None:  # InvalidConfig("message") — no field known
            field, message = "", field
        super().__init__(message)
        self.field = field
        self.message = message


class InvalidRange(ChrononAirflowError, ValueError):
    """A partition range that is not ``YYYY-MM-DD`` dates, is reversed, or is too long."""


class BackendError(ChrononAirflowError):
    """A model backend call failed. ``status_code`` is the HTTP status when there was one;
    ``transient`` is True for failures worth retrying later (5xx, 429, connection problems) once the
    client's own retries ran out."""

    def __init__(self, message: str, status_code: int | None = None, transient: bool = False):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.transient = transient


class BackendNotFoundError(BackendError):
    """HTTP 404, e.g. an unknown job id."""


class BackendConflictError(BackendError):
    """HTTP 409: the join's model transform is not registered (or registered differently)."""
