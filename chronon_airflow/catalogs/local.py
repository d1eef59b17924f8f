from __future__ import annotations

from chronon_airflow import settings, warehouse
from chronon_airflow.catalogs.base import PartitionCatalog


class LocalWarehouseCatalog(PartitionCatalog):
    """The local parquet warehouse shared by the local engine and the reference backend."""

    def __init__(self, root: str | None = None):
        self.root = root or str(settings.warehouse())

    def missing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds") -> list[str]:
        if partition_column != warehouse.PARTITION_COLUMN:
            raise ValueError(f"the local warehouse partitions by {warehouse.PARTITION_COLUMN!r}, "
                             f"not {partition_column!r} ({table})")
        present = set(warehouse.list_partitions(self.root, table))
        return [p for p in partitions if p not in present]
