from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chronon_airflow import settings, warehouse
from chronon_airflow.catalogs.base import PartitionCatalog
from chronon_airflow.exceptions import InvalidConfig


class HiveMetastoreCatalog(PartitionCatalog):
    """The Hive metastore, through ``apache-airflow-providers-apache-hive`` (install it with the
    ``hive`` extra: ``pip install 'chronon-airflow[hive]'``). The connection is
    ``[chronon] metastore_conn_id`` (default ``metastore_default``).

    Each partition is looked up by its exact name, as upstream Chronon's NamedHivePartitionSensor
    does: ``HiveMetastoreHook.check_for_named_partition(schema, table, "ds=2024-01-01/hr=00:00")``
    (the metastore's ``get_partition_by_name``). A bare table is in the ``default`` schema. The hook
    is created on first use, so constructing the catalog stays cheap; ``hook=`` injects one.
    """

    def __init__(self, conn_id: str | None = None, hook: Any = None):
        self.conn_id = conn_id or settings.get("metastore_conn_id")
        self._hook = hook
        if hook is None:
            try:
                import airflow.providers.apache.hive.hooks.hive  # noqa: F401
            except ImportError as e:  # the provider is optional: only production deployments need it
                # The setting names a catalog this installation cannot serve: a bad config.
                raise InvalidConfig(
                    "[chronon] catalog",
                    "[chronon] catalog = hive needs apache-airflow-providers-apache-hive: "
                    "pip install 'chronon-airflow[hive]'"
                ) from e

    @property
    def hook(self) -> Any:
        if self._hook is None:
            from airflow.providers.apache.hive.hooks.hive import HiveMetastoreHook

            self._hook = HiveMetastoreHook(metastore_conn_id=self.conn_id)
        return self._hook

    @staticmethod
    def partition_names(table: str, partitions: list[str], partition_column: str = "ds",
                        subpartitions: Mapping[str, str] | None = None) -> tuple[str, str, list[str]]:
        """``(schema, table, ["ds=2024-01-01/hr=00:00", ...])``, every part validated first."""
        schema, name = warehouse.check_table(table)
        return schema, name, [warehouse.partition_spec(ds, partition_column, subpartitions) for ds in partitions]

    def missing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds",
                           subpartitions: Mapping[str, str] | None = None) -> list[str]:
        schema, name, names = self.partition_names(table, partitions, partition_column, subpartitions)
        return [ds for ds, partition_name in zip(partitions, names, strict=True)
                if not self.hook.check_for_named_partition(schema, name, partition_name)]
