"""Airflow connection lookups shared by the CLI and the hooks (imports Airflow)."""
from __future__ import annotations


def connection_exists(conn_id: str) -> bool:
    """Whether Airflow can resolve ``conn_id`` (environment ``AIRFLOW_CONN_*``, secrets backends,
    or the metadata DB)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return False
    return True
