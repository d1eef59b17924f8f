"""The Spark connection as the plan's argv should show it."""
from __future__ import annotations

from chronon_airflow import settings
from chronon_airflow.spark.job import LOCAL_CONNECTION, SparkConnection


def configured_spark_connection() -> SparkConnection:
    """``[chronon] spark_conn_id`` when it resolves without a database round trip (environment
    variable or secrets backend), else the local default: DAG parsing must stay fast."""
    import json
    import os

    from airflow.models.connection import Connection

    conn_id = settings.get("spark_conn_id")
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not value:
        return LOCAL_CONNECTION
    conn = Connection.from_json(value, conn_id=conn_id) if value.lstrip().startswith("{") \
        else Connection(conn_id=conn_id, uri=value)
    extra = json.loads(conn.extra) if conn.extra else {}
    return SparkConnection.from_airflow(conn.conn_type or "spark", conn.host, conn.port, extra)
