"""Partition catalogs: where a partition sensor asks whether ``table/ds=...`` exists.

``[chronon] catalog`` picks one: ``local`` (the parquet warehouse, the default), ``hive`` (the Hive
metastore through the apache-hive provider, upstream Chronon's production choice), or the dotted
path of any :class:`PartitionCatalog` subclass (``mypkg.catalogs.GlueCatalog``).
"""
from __future__ import annotations

from chronon_airflow.catalogs.base import PartitionCatalog, get_catalog

__all__ = ["PartitionCatalog", "get_catalog"]
