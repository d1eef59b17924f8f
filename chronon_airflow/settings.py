"""Deployment settings of chronon-airflow.

Each setting is read from the environment variable ``AIRFLOW__CHRONON__<KEY>`` (the name Airflow
itself uses for ``[chronon] <key>`` in airflow.cfg), then from Airflow's config when Airflow is
already loaded in this process, then from the default here. This module never imports Airflow, so
the pure layers (config, plan) can use it.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, str] = {
    # Compiled Chronon repo root (holds teams.json and production/).
    "repo_path": "",
    # Local parquet warehouse (the local engine, reference backend and local catalog share it).
    "warehouse": "",
    # Model backend name -> Airflow connection id: "chronon_backend_<name>" unless overridden by
    # backend_conn_ids, a JSON object such as {"sagemaker": "ml_platform_sagemaker"}.
    "backend_conn_id_template": "chronon_backend_{backend}",
    "backend_conn_ids": "{}",
    # Spark: which connection spark-submit uses, and which engine runs Chronon jobs:
    # "local" (this package's PySpark engine, no jar) or "jar" (ai.chronon.spark.Driver).
    "spark_conn_id": "chronon_spark",
    "engine": "local",
    "chronon_jar": "",
    "chronon_version": "",
    # The Chronon "env" whose teams.json section overrides production settings.
    "env": "production",
    # Where partition sensors ask whether a partition exists: "local" (the parquet warehouse) or
    # "hive" (the metastore, via the apache-hive provider).
    "catalog": "local",
    "metastore_conn_id": "metastore_default",
    # Failure e-mails: the smtp provider's connection and the sender address.
    "smtp_conn_id": "smtp_default",
    "email_from": "chronon-airflow@localhost",
    # Partition sensors: seconds between pokes (reschedule mode) and before giving up.
    "sensor_poke_interval": "300",
    "sensor_timeout": "43200",
    # Model batch jobs: seconds between status polls (in the triggerer) and before giving up.
    "batch_job_poll_interval": "60",
    "batch_job_timeout": "86400",
    # Registration calls in flight at once in a metadata-upload run.
    "registration_concurrency": "16",
}


def get(key: str, default: str | None = None) -> str:
    env = os.environ.get(f"AIRFLOW__CHRONON__{key.upper()}")
    if env is not None:
        return env
    if "airflow.configuration" in sys.modules:
        conf = sys.modules["airflow.configuration"].conf
        value = conf.get("chronon", key, fallback=None)
        if value is not None:
            return value
    return DEFAULTS.get(key, "") if default is None else default


def repo_path() -> Path:
    """``[chronon] repo_path``, else ``$CHRONON_REPO_PATH``, else the project's ``configs/``."""
    value = get("repo_path") or os.environ.get("CHRONON_REPO_PATH") or str(PROJECT_ROOT / "configs")
    return Path(value).expanduser().resolve()


def warehouse() -> Path:
    value = get("warehouse") or os.environ.get("CHRONON_WAREHOUSE") or str(PROJECT_ROOT / ".chronon" / "warehouse")
    return Path(value).expanduser().resolve()


def backend_conn_id(backend: str) -> str:
    """The Airflow connection id a model backend name resolves to."""
    overrides = json.loads(get("backend_conn_ids") or "{}")
    if backend in overrides:
        return overrides[backend]
    return get("backend_conn_id_template").format(backend=backend)
