"""Airflow Assets for Chronon tables: one per fully qualified table name."""
from __future__ import annotations

from airflow.sdk import Asset

from chronon_airflow.naming import split_table


def table_asset(table: str) -> Asset:
    namespace, name = split_table(table)
    return Asset(name=table, uri=f"chronon://{namespace}/{name}", group="chronon")
