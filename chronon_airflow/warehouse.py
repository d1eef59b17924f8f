"""The local parquet warehouse: one layout, shared by the local Spark engine, the reference model
backend and the local partition catalog.

Layout: ``<root>/<namespace>/<table>/ds=YYYY-MM-DD/part-*.parquet`` plus a ``_SUCCESS`` marker.
A partition *exists* only once its ``_SUCCESS`` marker is there, so a reader never sees a
half-written partition (Spark writes the marker last; :func:`commit_partition` does the same for
non-Spark writers by writing into a temporary folder and renaming it into place).
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from chronon_airflow.naming import split_table

PARTITION_COLUMN = "ds"
SUCCESS_MARKER = "_SUCCESS"
_DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_IDENT = re.compile(r"^[A-Za-z0-9_]+$")


def table_path(root: str | os.PathLike, fq_table: str) -> Path:
    namespace, table = split_table(fq_table)
    for part in (namespace, table):
        # Table names come from configs: never let one escape the warehouse root.
        if not _IDENT.match(part):
            raise ValueError(f"table name {fq_table!r} is not of the form namespace.table with [A-Za-z0-9_]")
    return Path(root) / namespace / table


def partition_path(root: str | os.PathLike, fq_table: str, ds: str) -> Path:
    if not _DS.match(ds):
        raise ValueError(f"partition {ds!r} is not a YYYY-MM-DD date")
    return table_path(root, fq_table) / f"{PARTITION_COLUMN}={ds}"


def has_partition(root: str | os.PathLike, fq_table: str, ds: str) -> bool:
    return (partition_path(root, fq_table, ds) / SUCCESS_MARKER).exists()


def list_partitions(root: str | os.PathLike, fq_table: str) -> list[str]:
    """Committed partitions of a table, sorted."""
    path = table_path(root, fq_table)
    if not path.is_dir():
        return []
    prefix = f"{PARTITION_COLUMN}="
    return sorted(
        child.name[len(prefix):]
        for child in path.iterdir()
        if child.name.startswith(prefix) and (child / SUCCESS_MARKER).exists()
    )


def staging_path(root: str | os.PathLike, fq_table: str, ds: str) -> Path:
    """A fresh temporary folder beside the partition, for writers other than Spark."""
    target = partition_path(root, fq_table, ds)
    staging = target.parent / f".staging-{target.name}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    return staging


def commit_partition(root: str | os.PathLike, fq_table: str, ds: str, staging: Path) -> Path:
    """Atomically replace partition ``ds`` with the files in ``staging`` and mark it committed."""
    target = partition_path(root, fq_table, ds)
    (staging / SUCCESS_MARKER).touch()
    if target.exists():
        trash = target.parent / f".trash-{target.name}-{uuid.uuid4().hex}"
        os.rename(target, trash)
        os.rename(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(staging, target)
    return target
