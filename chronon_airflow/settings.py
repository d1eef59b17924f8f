"""Deployment settings of chronon-airflow: ``[chronon] <key>``.

Each setting is read from the environment variable ``AIRFLOW__CHRONON__<KEY>`` (the name Airflow
itself gives ``[chronon] <key>``), then from the ``[chronon]`` section of Airflow's config file
(``$AIRFLOW_CONFIG``, else ``$AIRFLOW_HOME/airflow.cfg``, else ``~/airflow/airflow.cfg``), then from
the default here. The file is read by this module itself, so a value is the same in every process
whether or not Airflow is imported yet (the CLI, the DAG file, a worker) and the pure layers never
import Airflow. The planner does not read settings: :mod:`chronon_airflow.deployment` resolves them
once into a frozen object that is passed in.
"""
from __future__ import annotations

import configparser
import json
import os
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
    # OpenLineage (the lineage extra): the namespace of the tables every task reports. Empty: from
    # the catalog (hive://<metastore host>:<port>, file for the local warehouse); see lineage.py.
    "lineage_namespace": "",
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
    # The longest partition range (in days) a run may compute; longer ones are refused at trigger time.
    "max_range_days": "3660",
    # Task retries (every generated task but the metadata upload and config errors) and the delay
    # between tries, in seconds.
    "retries": "1",
    "retry_delay": "300",
    # execution_timeout per task kind, in seconds, as a JSON object over the built-in defaults
    # (chronon_airflow.render.timeouts): {"spark": 43200, "register_model": 600, ...}; "spark" means
    # every Chronon Spark step; 0 or null: no timeout. Waits have their own timeouts (above).
    "execution_timeouts": "{}",
    # dagrun_timeout of every generated DAG, in seconds (0: none).
    "dagrun_timeout": "172800",
    # Deadline alert of a join DAG: e-mail the owners when a scheduled run's output has not landed
    # this many hours after its data interval ended (0: no alert).
    "landing_deadline_hours": "6",
    # The Airflow pool every Chronon Spark step runs in ("" = Airflow's default_pool) and the size
    # the demo, the compose file and `airflow pools set` give it.
    "spark_pool": "chronon_spark",
    "spark_pool_slots": "4",
    # The DAG files' parse cache (chronon_airflow/render/cache.py): its folder ("" =
    # $AIRFLOW_HOME/chronon_plan_cache, "off" = no cache), and how it tells a compiled file changed:
    # "mtime" (size and mtime) or "content" (size and SHA-1 of the bytes, for deploys that rewrite
    # every file's mtime).
    "plan_cache_dir": "",
    "plan_cache_stamp": "mtime",
    # Who writes the cache after a parse: "background" (a process of its own, so the parse does
    # not wait for it) or "inline".
    "plan_cache_writes": "background",
}

# Process-wide on purpose and safe: a memo of airflow.cfg's [chronon] section, keyed by the file's path
# and checked against its (mtime, size) on every read, so it can never serve a stale or foreign value.
_FILE_CACHE: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}


def config_file() -> Path:
    """Airflow's config file, located the way Airflow locates it."""
    explicit = os.environ.get("AIRFLOW_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return Path(home).expanduser() / "airflow.cfg"


def _file_section() -> dict[str, str]:
    """The ``[chronon]`` section of the config file, re-read only when the file changes."""
    path = config_file()
    try:
        st = path.stat()
    except OSError:
        return {}
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _FILE_CACHE.get(str(path))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
        section = dict(parser["chronon"]) if parser.has_section("chronon") else {}
    except (configparser.Error, OSError, UnicodeDecodeError):
        section = {}
    _FILE_CACHE[str(path)] = (stamp, section)
    return section


def get(key: str, default: str | None = None) -> str:
    env = os.environ.get(f"AIRFLOW__CHRONON__{key.upper()}")
    if env is not None:
        return env
    value = _file_section().get(key.lower())
    if value is not None:
        return value
    return DEFAULTS.get(key, "") if default is None else default


def snapshot() -> dict[str, str]:
    """Every setting's effective value (the environment and file as they are now)."""
    return {key: get(key) for key in DEFAULTS}


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
