from __future__ import annotations

from chronon_airflow import settings
from chronon_airflow.catalogs.base import PartitionCatalog


class HiveMetastoreCatalog(PartitionCatalog):
    """The Hive metastore, through ``apache-airflow-providers-apache-hive`` (install it with the
    ``hive`` extra: ``pip install 'chronon-airflow[hive]'``). The connection is
    ``[chronon] metastore_conn_id`` (default ``metastore_default``)."""

    def __init__(self, conn_id: str | None = None):
        try:
            from airflow.providers.apache.hive.hooks.hive import HiveMetastoreHook
        except ImportError as e:  # the provider is optional: only production deployments need it
            raise RuntimeError(
                "[chronon] catalog = hive needs apache-airflow-providers-apache-hive: "
                "pip install 'chronon-airflow[hive]'"
            ) from e
        self.hook = HiveMetastoreHook(metastore_conn_id=conn_id or settings.get("metastore_conn_id"))

    def missing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds") -> list[str]:
        schema, _, name = table.partition(".")
        # table, column and ds are validated identifiers/dates, so the filter cannot be injected.
        return [
            ds for ds in partitions
            if not self.hook.check_for_partition(schema, name, f"{partition_column}='{ds}'")
        ]
