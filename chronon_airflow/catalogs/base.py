from __future__ import annotations

import abc
import asyncio
import importlib
from collections.abc import Mapping, Sequence

from chronon_airflow import settings
from chronon_airflow.exceptions import InvalidConfig


class PartitionCatalog(abc.ABC):
    """Answers whether partitions of a table exist. Implementations must be cheap to construct
    (the partition trigger builds one in the triggerer process, the sensor one per check).

    A partition is ``<partition_column>=<ds>`` followed by the static ``subpartitions`` in order
    (``{"hr": "00:00"}`` -> ``ds=2024-01-01/hr=00:00``); a bare table name is in the ``default``
    namespace. Only :meth:`missing_partitions` must be implemented: :meth:`amissing_partitions`
    runs it in a thread unless a subclass has something better.
    """

    @abc.abstractmethod
    def missing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds",
                           subpartitions: Mapping[str, str] | None = None) -> list[str]:
        """The subset of ``partitions`` (``YYYY-MM-DD``, in their order) of ``table`` (``ns.table``
        or a bare ``table``) that do not exist yet."""

    async def amissing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds",
                                  subpartitions: Mapping[str, str] | None = None) -> list[str]:
        """:meth:`missing_partitions` from the triggerer's event loop: in a worker thread by
        default, so a blocking catalog (the metastore client, a custom one) never stalls the loop."""
        return await asyncio.to_thread(missing_partitions, self, table, partitions, partition_column, subpartitions)


def missing_partitions(catalog: PartitionCatalog, table: str, partitions: Sequence[str], partition_column: str = "ds",
                       subpartitions: Mapping[str, str] | None = None) -> list[str]:
    """``catalog.missing_partitions(...)``, also for custom catalogs written against the older
    signature ``(table, partitions, partition_column)``: ``subpartitions`` is only passed when there
    are some (such a catalog then fails with a clear TypeError)."""
    if subpartitions:
        try:
            return list(catalog.missing_partitions(table, list(partitions), partition_column,
                                                   subpartitions=dict(subpartitions)))
        except TypeError as e:
            if "subpartitions" in str(e):
                raise TypeError(f"catalog {type(catalog).__module__}.{type(catalog).__qualname__} does not take "
                                f"subpartitions=, needed for {table} ({dict(subpartitions)})") from e
            raise
    return list(catalog.missing_partitions(table, list(partitions), partition_column))


BUILTIN = {
    "local": "chronon_airflow.catalogs.local.LocalWarehouseCatalog",
    "hive": "chronon_airflow.catalogs.hive.HiveMetastoreCatalog",
}


def catalog_name(name: str | None = None) -> str:
    """The catalog a sensor uses: ``name``, else ``[chronon] catalog``, else ``local``."""
    return name or settings.get("catalog") or "local"


def get_catalog(name: str | None = None) -> PartitionCatalog:
    name = catalog_name(name)
    target = BUILTIN.get(name, name)
    module, _, cls_name = target.rpartition(".")
    if not module:
        raise InvalidConfig("[chronon] catalog",
                            f"[chronon] catalog = {name!r}: expected one of {sorted(BUILTIN)} or a dotted class path")
    cls = getattr(importlib.import_module(module), cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, PartitionCatalog)):
        raise InvalidConfig("[chronon] catalog", f"[chronon] catalog = {name!r} is not a PartitionCatalog subclass")
    return cls()
