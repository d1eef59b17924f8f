"""The deployment a plan is built for: every ``[chronon]`` setting and the Spark connection, resolved
once into one frozen object.

The plan is a pure function of ``(repo, deployment)``: the planner never reads settings or
connections itself, so the DAG file, ``chronon-airflow plan``, the plugin page, the demo and the
bench see the same plan for the same inputs (:func:`chronon_airflow.plan.load_plan`).

:class:`Deployment` itself imports nothing from Airflow (the plan layer uses it);
:func:`resolve_deployment` looks the Spark connection up through Airflow, as the Spark provider's
hook will when the task runs, so the argv the plan shows is the argv that runs.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from chronon_airflow import settings
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.spark.env import PRODUCTION
from chronon_airflow.spark.job import ENGINES, SparkConnection


@dataclass(frozen=True)
class Deployment:
    """What the generated DAGs depend on besides the compiled repo."""

    engine: str = "local"
    env: str = PRODUCTION
    chronon_jar: str = ""
    chronon_version: str = ""
    spark_conn_id: str = "chronon_spark"
    # The Spark connection as the provider's hook resolves it (master, deploy mode, queue ...).
    # ``None`` when it is not defined: the provider then falls back to master "yarn".
    spark_connection: SparkConnection | None = None
    catalog: str = "local"
    sensor_poke_interval: float = 300.0
    sensor_timeout: float = 43200.0
    batch_job_poll_interval: float = 60.0
    batch_job_timeout: float = 86400.0
    smtp_conn_id: str = "smtp_default"
    email_from: str = "chronon-airflow@localhost"
    max_range_days: int = 3660
    # Every [chronon] setting as read, for the cache key and for operators that read one at run time.
    settings: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def spark(self) -> SparkConnection:
        """The connection the argv is built for (the provider's default when it is missing)."""
        return self.spark_connection or SparkConnection()

    def fingerprint(self) -> str:
        """A stable hash of everything here (the parse cache key)."""
        items = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "settings"}
        items["settings"] = dict(sorted(self.settings.items()))
        return hashlib.sha256(json.dumps(items, sort_keys=True, default=repr).encode()).hexdigest()[:32]

    def warnings(self) -> list[str]:
        """Deployment problems that do not stop planning but will fail tasks."""
        out = []
        if self.spark_connection is None:
            out.append(f"Spark connection {self.spark_conn_id!r} is not defined: spark-submit falls back to "
                       "master 'yarn' (and the local engine refuses to run without it)")
        return out


def _float(values: Mapping[str, str], key: str) -> float:
    try:
        return float(values[key])
    except ValueError:
        raise InvalidConfig(f"[chronon] {key}", f"{values[key]!r} is not a number") from None


def from_settings(values: Mapping[str, str], spark_connection: SparkConnection | None) -> Deployment:
    """A deployment from ``[chronon]`` values (see :mod:`chronon_airflow.settings`) and a connection."""
    values = {**settings.DEFAULTS, **values}
    engine = values["engine"] or "local"
    if engine not in ENGINES:
        raise InvalidConfig("[chronon] engine", f"{engine!r} is not one of {ENGINES}")
    try:
        max_days = int(values["max_range_days"])
    except ValueError:
        raise InvalidConfig("[chronon] max_range_days", f"{values['max_range_days']!r} is not a whole number") from None
    return Deployment(
        engine=engine,
        env=values["env"] or PRODUCTION,
        chronon_jar=values["chronon_jar"],
        chronon_version=values["chronon_version"],
        spark_conn_id=values["spark_conn_id"],
        spark_connection=spark_connection,
        catalog=values["catalog"] or "local",
        sensor_poke_interval=_float(values, "sensor_poke_interval"),
        sensor_timeout=_float(values, "sensor_timeout"),
        batch_job_poll_interval=_float(values, "batch_job_poll_interval"),
        batch_job_timeout=_float(values, "batch_job_timeout"),
        smtp_conn_id=values["smtp_conn_id"],
        email_from=values["email_from"],
        max_range_days=max_days,
        settings=dict(values),
    )


def lookup_spark_connection(conn_id: str) -> SparkConnection | None:
    """The Airflow connection ``conn_id`` as the Spark provider's hook will resolve it (environment
    variable, secrets backend, or the metadata DB where this process may read it); ``None`` if it
    is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return SparkConnection.from_airflow(conn.conn_type or "spark", conn.host, conn.port, conn.extra_dejson or {})


def resolve_deployment(overrides: Mapping[str, str] | None = None) -> Deployment:
    """The deployment of this process: ``[chronon]`` settings (environment, then airflow.cfg) plus
    ``overrides``, and the Spark connection they name."""
    values = {**settings.snapshot(), **(overrides or {})}
    return from_settings(values, lookup_spark_connection(values["spark_conn_id"]))
