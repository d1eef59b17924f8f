"""Partition catalogs: where a partition sensor asks whether ``table/ds=...[/hr=...]`` exists.

``[chronon] catalog`` picks one: ``local`` (the parquet warehouse, the default), ``hive`` (the Hive
metastore through the apache-hive provider, upstream Chronon's production choice), or the dotted
path of any :class:`PartitionCatalog` subclass (``mypkg.catalogs.GlueCatalog``). The partition
trigger builds its catalog again inside the triggerer process, so a custom one must be importable
there too.
"""
from __future__ import annotations

from chronon_airflow.catalogs.base import PartitionCatalog, catalog_name, get_catalog, missing_partitions

__all__ = ["PartitionCatalog", "catalog_name", "get_catalog", "missing_partitions"]
