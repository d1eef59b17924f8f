"""Template macros for Chronon partitions, exposed as ``{{ macros.chronon.<name>(...) }}``.

Chronon partitions are daily ``ds`` strings (``YYYY-MM-DD``); a partition spec is upstream's
``<table>/<partition column>=<ds>`` (``metaData.dependencies`` uses the same shape). Every function
validates its inputs and raises ValueError with the bad value, so a typo in a template fails the
task at render time instead of reading or writing the wrong partition.
"""
from __future__ import annotations

import re

from chronon_airflow import partitions

_TABLE_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")
_COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ds_add(ds: str, days: int) -> str:
    """``ds`` shifted by ``days`` (negative = earlier), like Airflow's ``macros.ds_add``."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"days must be an integer, got {days!r}")
    return partitions.ds_add(partitions.check_ds(ds), days)


def ds_range(start: str, end: str) -> list[str]:
    """Every daily partition from ``start`` to ``end``, both included, in order; the range rule the
    runs use (``start <= end``, at most ``[chronon] max_range_days`` partitions)."""
    return partitions.ds_range(*partitions.check_range(partitions.check_ds(start, "start"),
                                                      partitions.check_ds(end, "end")))


def ds_count(start: str, end: str) -> int:
    """How many daily partitions ``[start, end]`` holds."""
    return len(ds_range(start, end))


def partition_spec(table: str, ds: str, column: str = "ds", subpartition: str = "") -> str:
    """Upstream's partition spec ``<table>/<column>=<ds>[/<subpartition>]``, e.g.
    ``partition_spec("data.events", "2024-01-05")`` -> ``data.events/ds=2024-01-05``."""
    if not isinstance(table, str) or not _TABLE_RE.match(table):
        raise ValueError(f"table must be <namespace>.<name> of [A-Za-z0-9_], got {table!r}")
    if not isinstance(column, str) or not _COLUMN_RE.match(column):
        raise ValueError(f"partition column must be an identifier, got {column!r}")
    partitions.check_ds(ds)
    spec = f"{table}/{column}={ds}"
    if subpartition:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_-]+(/[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_-]+)*",
                            subpartition):
            raise ValueError(f"subpartition must look like col=value[/col=value], got {subpartition!r}")
        spec += f"/{subpartition}"
    return spec


def partition_specs(table: str, start: str, end: str, column: str = "ds") -> list[str]:
    """``partition_spec`` of every day of ``[start, end]``."""
    return [partition_spec(table, ds, column) for ds in ds_range(start, end)]


# What the plugin exposes, in one place so the plugin file and the tests agree.
MACROS = [ds_add, ds_range, ds_count, partition_spec, partition_specs]
