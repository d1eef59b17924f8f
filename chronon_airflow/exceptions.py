"""Every error chronon-airflow raises derives from :class:`ChrononAirflowError`.

One name per kind of problem:

* :class:`InvalidConfig` — a compiled config, ``teams.json`` or setting value that cannot be used
  (the loader reports it as a ``ConfigError(path, field, message)`` row; elsewhere it is raised).
* :class:`InvalidRange` — a partition range (``start_ds``/``end_ds``) that is not a valid range.
* :class:`BackendError` lives in :mod:`chronon_airflow.backend.interface` and derives from the base
  here, so ``except ChrononAirflowError`` catches every failure of ours.
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
