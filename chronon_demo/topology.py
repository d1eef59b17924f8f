"""One definition of the settings that the native distributed topology
(:mod:`chronon_demo.distributed`) and ``docker-compose.yaml`` share.

The native topology builds its environment from these values; the compose file is YAML and
spells them out, and ``tests/integration/test_compose.py`` compares it with this module key by
key. What must be equal everywhere:

* :data:`SHARED_ENV`: executor, default queue, plugin loading and every ``[chronon]`` setting
  that is not a path or an address;
* :data:`DEPLOYMENT_ENV`: keys both must set, whose values are per deployment (a path, a host):
  only their form is shared (a ``postgresql+psycopg2://`` URL, a ``redis://`` broker ...);
* :data:`CONNECTIONS`: the connection ids and their types (plus the Spark connection's deploy
  mode; the master is a ``spark://`` standalone cluster in both);
* the Celery queues: one worker per queue of :func:`worker_queues` (teams.json's
  ``airflow_queue`` values and Airflow's default queue).

No Airflow import here: the Celery workers import :func:`hostname` at start-up.
"""
from __future__ import annotations

import os
from pathlib import Path

EXECUTOR = "CeleryExecutor"
DEFAULT_QUEUE = "default"
SPARK_CONN_ID = "chronon_spark"
BACKEND_CONN_ID = "chronon_backend_reference"  # model backend "reference" by the default template
SMTP_CONN_ID = "smtp_default"

SHARED_ENV: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
    "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "false",
    # [chronon] (chronon_airflow/settings.py)
    "AIRFLOW__CHRONON__ENGINE": "local",
    "AIRFLOW__CHRONON__CATALOG": "local",
    "AIRFLOW__CHRONON__SPARK_CONN_ID": SPARK_CONN_ID,
    "AIRFLOW__CHRONON__SMTP_CONN_ID": SMTP_CONN_ID,
    "AIRFLOW__CHRONON__SENSOR_POKE_INTERVAL": "5",
    "AIRFLOW__CHRONON__BATCH_JOB_POLL_INTERVAL": "5",
    # The pool of the Chronon Spark steps, created at start (the compose file's airflow-init, the
    # native stacks through the REST API) with this many slots.
    "AIRFLOW__CHRONON__SPARK_POOL": "chronon_spark",
    "AIRFLOW__CHRONON__SPARK_POOL_SLOTS": "4",
}

# key -> the prefix its value starts with in every deployment ("" = any non-empty value).
DEPLOYMENT_ENV: dict[str, str] = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://",
    "AIRFLOW__CELERY__BROKER_URL": "redis://",
    "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql+psycopg2://",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://",
    "AIRFLOW__API__PORT": "",
    "AIRFLOW__CHRONON__REPO_PATH": "/",
    "AIRFLOW__CHRONON__WAREHOUSE": "/",
    "AIRFLOW__CHRONON__EMAIL_FROM": "",
}

# conn id -> (conn_type, extra keys whose values must be equal)
CONNECTIONS: dict[str, tuple[str, dict[str, object]]] = {
    BACKEND_CONN_ID: ("chronon_model_backend", {}),
    SPARK_CONN_ID: ("spark", {"deploy-mode": "client"}),
    SMTP_CONN_ID: ("smtp", {"disable_tls": True, "disable_ssl": True}),
}
SPARK_MASTER_SCHEME = "spark://"


def conn_env_key(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


def worker_queues(repo_path: str | os.PathLike) -> list[str]:
    """The Celery queues the repo's DAGs use: every team's ``airflow_queue`` (teams.json, with the
    ``default`` team as fallback) and Airflow's default queue, the default first."""
    from chronon_airflow.config import load_repo

    loaded = load_repo(Path(repo_path))
    queues = {t.airflow_queue or DEFAULT_QUEUE for t in loaded.teams.values()}
    return [DEFAULT_QUEUE] + sorted(queues - {DEFAULT_QUEUE})


# The native topology gives each Celery worker its own loopback address as its hostname, so a
# task instance's ``hostname`` says which worker ran it and the API server reaches the log
# server of exactly that worker (all on 127.0.0.0/8, nothing leaves the machine).
HOSTNAME_ENV = "CHRONON_DEMO_HOSTNAME"
HOSTNAME_CALLABLE = "chronon_demo.topology.hostname"


def hostname() -> str:
    """``[core] hostname_callable`` of the native topology: the process's own address from
    ``$CHRONON_DEMO_HOSTNAME``, else Airflow's default (the FQDN)."""
    name = os.environ.get(HOSTNAME_ENV)
    if name:
        return name
    import socket

    return socket.getfqdn()
