"""The local parquet warehouse: one layout, shared by the local Spark engine, the reference model
backend and the local partition catalog.

Layout: ``<root>/<namespace>/<table>/<column>=YYYY-MM-DD[/<key>=<value>...]/part-*.parquet`` plus a
``_SUCCESS`` marker; the column is ``ds`` unless a dependency names another one (``dt``), and the
optional static sub-partitions follow in order (``ds=2024-01-01/hr=00:00``), as Hive lays out a
partitioned table. A bare table name (no namespace) lives in Hive's ``default`` namespace.
A partition *exists* only once its ``_SUCCESS`` marker is there, so a reader never sees a
half-written partition (Spark writes the marker last; :func:`commit_partition` does the same for
non-Spark writers by writing into a temporary folder and renaming it into place).

Every name that becomes a path component is checked first, so no config string can escape the
warehouse root: namespaces and tables ``[A-Za-z0-9_]+``, partition columns and sub-partition keys
identifiers, sub-partition values ``[A-Za-z0-9_.:+-]+``, the column's value a ``YYYY-MM-DD`` date.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from chronon_airflow.naming import split_table

PARTITION_COLUMN = "ds"
SUCCESS_MARKER = "_SUCCESS"
_DS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_IDENT = re.compile(r"[A-Za-z0-9_]+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[A-Za-z0-9_.:+-]+")

# Static sub-partitions: an ordered mapping ({"hr": "00:00"}) or (key, value) pairs.
SubpartitionSpec = Mapping[str, str] | Iterable[tuple[str, str]] | None


def check_table(fq_table: str) -> tuple[str, str]:
    """``ns.table`` -> ``("ns", "table")``, a bare ``table`` -> ``("default", "table")``; both parts
    ``[A-Za-z0-9_]+``, else ValueError."""
    if not isinstance(fq_table, str):
        raise ValueError(f"table name {fq_table!r} is not a string")
    namespace, table = split_table(fq_table)
    for part in (namespace, table):
        # Table names come from configs: never let one escape the warehouse root.
        if not _IDENT.fullmatch(part):
            raise ValueError(f"table name {fq_table!r} is not of the form [namespace.]table with [A-Za-z0-9_]")
    return namespace, table


def check_subpartitions(subpartitions: SubpartitionSpec) -> tuple[tuple[str, str], ...]:
    """Static sub-partitions in order, as ``((key, value), ...)``; keys identifiers, values
    ``[A-Za-z0-9_.:+-]+`` (``hr=00:00``, ``table_name=ns.view``), else ValueError."""
    if not subpartitions:
        return ()
    pairs = subpartitions.items() if isinstance(subpartitions, Mapping) else subpartitions
    out = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"sub-partition {pair!r} is not a (key, value) pair")
        key, value = pair
        if not (isinstance(key, str) and _KEY.fullmatch(key)):
            raise ValueError(f"sub-partition key {key!r} is not an identifier")
        if not (isinstance(value, str) and _VALUE.fullmatch(value)):
            raise ValueError(f"sub-partition value {key}={value!r} is not made of [A-Za-z0-9_.:+-]")
        out.append((key, value))
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise ValueError(f"sub-partition keys {keys} repeat")
    return tuple(out)


def check_column(column: str) -> str:
    if not (isinstance(column, str) and _KEY.fullmatch(column)):
        raise ValueError(f"partition column {column!r} is not an identifier")
    return column


def check_ds(ds: str) -> str:
    if not (isinstance(ds, str) and _DS.fullmatch(ds)):
        raise ValueError(f"partition {ds!r} is not a YYYY-MM-DD date")
    return ds


def partition_spec(ds: str, column: str = PARTITION_COLUMN,
                   subpartitions: SubpartitionSpec = None) -> str:
    """Hive's partition name, validated: ``ds=2024-01-01``, ``dt=2024-01-01/hr=00:00``. It is also
    the partition's folder under its table in this warehouse."""
    check_ds(ds)
    check_column(column)
    subs = check_subpartitions(subpartitions)
    if column in (k for k, _ in subs):
        raise ValueError(f"sub-partition key {column!r} repeats the partition column")
    return "/".join([f"{column}={ds}", *(f"{k}={v}" for k, v in subs)])


def table_path(root: str | os.PathLike, fq_table: str) -> Path:
    namespace, table = check_table(fq_table)
    return Path(root) / namespace / table


def partition_path(root: str | os.PathLike, fq_table: str, ds: str, column: str = PARTITION_COLUMN,
                   subpartitions: SubpartitionSpec = None) -> Path:
    return table_path(root, fq_table).joinpath(*partition_spec(ds, column, subpartitions).split("/"))


def has_partition(root: str | os.PathLike, fq_table: str, ds: str, column: str = PARTITION_COLUMN,
                  subpartitions: SubpartitionSpec = None) -> bool:
    return (partition_path(root, fq_table, ds, column, subpartitions) / SUCCESS_MARKER).exists()


def list_partitions(root: str | os.PathLike, fq_table: str, column: str = PARTITION_COLUMN,
                    subpartitions: SubpartitionSpec = None) -> list[str]:
    """Committed partitions (the ``column`` values) of a table, sorted; with ``subpartitions``, only
    those whose sub-partition is committed."""
    path = table_path(root, fq_table)
    if not path.is_dir():
        return []
    check_column(column)
    rest = [f"{k}={v}" for k, v in check_subpartitions(subpartitions)]
    prefix = f"{column}="
    return sorted(
        child.name[len(prefix):]
        for child in path.iterdir()
        if child.name.startswith(prefix) and _DS.fullmatch(child.name[len(prefix):])
        and child.joinpath(*rest, SUCCESS_MARKER).exists()
    )


def staging_path(root: str | os.PathLike, fq_table: str, ds: str, column: str = PARTITION_COLUMN,
                 subpartitions: SubpartitionSpec = None) -> Path:
    """A fresh temporary folder beside the partition, for writers other than Spark."""
    target = partition_path(root, fq_table, ds, column, subpartitions)
    staging = target.parent / f".staging-{target.name}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    return staging


_COMMIT_ATTEMPTS = 100  # a commit that loses this many races in a row gives up


def commit_partition(root: str | os.PathLike, fq_table: str, ds: str, staging: Path,
                     column: str = PARTITION_COLUMN,
                     subpartitions: SubpartitionSpec = None) -> Path:
    """Replace the partition with the files in ``staging`` and mark it committed.

    A reader sees the old files, no partition, or the new files, never a mix. Writers of the same
    partition at once (two backfills of one day, a retry beside a run that was thought lost) do
    not fail each other: the last rename wins and its files are the partition."""
    target = partition_path(root, fq_table, ds, column, subpartitions)
    (staging / SUCCESS_MARKER).touch()
    moved_aside: list[Path] = []
    try:
        for _ in range(_COMMIT_ATTEMPTS):
            try:
                os.rename(staging, target)  # atomic, and fails while a partition is there
                return target
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            trash = target.parent / f".trash-{target.name}-{uuid.uuid4().hex}"
            try:
                os.rename(target, trash)
            except FileNotFoundError:  # another writer moved it aside first: try again
                continue
            moved_aside.append(trash)
        raise OSError(errno.EBUSY, f"{target}: still replaced by other writers after {_COMMIT_ATTEMPTS} attempts")
    finally:
        for trash in moved_aside:
            shutil.rmtree(trash, ignore_errors=True)
