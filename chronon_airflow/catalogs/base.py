from __future__ import annotations

import abc
import importlib

from chronon_airflow import settings


class PartitionCatalog(abc.ABC):
    """Answers whether partitions of a table exist. Implementations must be cheap to construct."""

    @abc.abstractmethod
    def missing_partitions(self, table: str, partitions: list[str], partition_column: str = "ds") -> list[str]:
        """The subset of ``partitions`` (``YYYY-MM-DD``) of ``table`` (``ns.table``) that do not exist yet."""


BUILTIN = {
    "local": "chronon_airflow.catalogs.local.LocalWarehouseCatalog",
    "hive": "chronon_airflow.catalogs.hive.HiveMetastoreCatalog",
}


def get_catalog(name: str | None = None) -> PartitionCatalog:
    name = name or settings.get("catalog") or "local"
    target = BUILTIN.get(name, name)
    module, _, cls_name = target.rpartition(".")
    if not module:
        raise ValueError(f"[chronon] catalog = {name!r}: expected one of {sorted(BUILTIN)} or a dotted class path")
    cls = getattr(importlib.import_module(module), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, PartitionCatalog)):
        raise ValueError(f"[chronon] catalog = {name!r} is not a PartitionCatalog subclass")
    return cls()
