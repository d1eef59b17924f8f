from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from chronon_airflow import settings, warehouse
from chronon_airflow.catalogs.base import PartitionCatalog


class LocalWarehouseCatalog(PartitionCatalog):
    """The local parquet warehouse shared by the local engine and the reference backend
    (:mod:`chronon_airflow.warehouse`): a partition exists once its ``_SUCCESS`` marker does."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = str(root) if root else str(settings.warehouse())

    def _markers(self, table: str, partitions: list[str], partition_column: str,
                 subpartitions: Mapping[str, str] | None) -> list[tuple[str, str]]:
        # Every name is validated before it becomes a path (ValueError otherwise).
        base = warehouse.table_path(self.root, table)
        return [(ds, os.path.join(base, warehouse.partition_spec(ds, partition_column, subpartitions),
                                  warehouse.SUCCESS_MARKER))
                for ds in partitions]

    @staticmethod
    def _absent(markers: list[tuple[str, str]]) -> list[str]:
        return [ds for ds, marker in markers if not os.path.exists(marker)]

    def missing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds",
                           subpartitions: Mapping[str, str] | None = None) -> list[str]:
        return self._absent(self._markers(table, partitions, partition_column, subpartitions))

    async def amissing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds",
                                  subpartitions: Mapping[str, str] | None = None) -> list[str]:
        # Names are checked in the loop (cheap, and a bad one fails at once); only the stat calls,
        # which may block on a network filesystem, go to a thread, all in one hop.
        markers = self._markers(table, partitions, partition_column, subpartitions)
        return await asyncio.to_thread(self._absent, markers)
