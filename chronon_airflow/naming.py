"""Table and column names exactly as upstream Chronon derives them (``Extensions.scala``).

Pure functions, no I/O: every layer (loader, plan, engine, backend) names tables through here so
that the raw join, the model batch job and the chained GroupBy agree on what they read and write.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")

PRE_MT_SUFFIX = "_pre_mt"
UPLOAD_SUFFIX = "_upload"

# thrift enum ``Operation`` -> the lowercase name Chronon puts in column names.
OPERATIONS = {
    0: "min",
    1: "max",
    2: "first",
    3: "last",
    4: "unique_count",
    5: "approx_unique_count",
    6: "count",
    7: "sum",
    8: "average",
    9: "variance",
    10: "skew",
    11: "kurtosis",
    12: "approx_percentile",
    13: "last_k",
    14: "first_k",
    15: "top_k",
    16: "bottom_k",
    17: "histogram",
    18: "approx_histogram_k",
}
# thrift enum ``TimeUnit``.
TIME_UNITS = {0: "h", 1: "d"}


def sanitize(name: str) -> str:
    """Upstream ``cleanName``: every character outside ``[A-Za-z0-9_]`` becomes ``_``."""
    return _UNSAFE.sub("_", name)


def output_table(namespace: str, name: str) -> str:
    """``<outputNamespace>.<cleanName>`` — a join's (final) output or a GroupBy's backfill table."""
    return f"{namespace}.{sanitize(name)}"


def pre_mt_table(namespace: str, name: str) -> str:
    """Where the raw join of a model-transform join lands; the model batch job reads it."""
    return output_table(namespace, name) + PRE_MT_SUFFIX


def upload_table(namespace: str, name: str) -> str:
    """A GroupBy's upload (serving snapshot) table, upstream ``MetaData.uploadTable``."""
    return output_table(namespace, name) + UPLOAD_SUFFIX


def window_suffix(length: int, time_unit: int) -> str:
    return f"{length}{TIME_UNITS[time_unit]}"


def aggregation_column(input_column: str, operation: int, window: tuple[int, int] | None = None) -> str:
    """``<input>_<op>[_<window>]``, e.g. ``amount_cents_sum_30d``."""
    base = f"{input_column}_{OPERATIONS[operation]}"
    return base if window is None else f"{base}_{window_suffix(*window)}"


def join_part_column(group_by_name: str, column: str, prefix: str | None = None) -> str:
    """A right-side column in a join: ``[<prefix>_]<cleanName(groupBy)>_<column>``."""
    base = f"{sanitize(group_by_name)}_{column}"
    return f"{prefix}_{base}" if prefix else base


def model_output_column(field: str, output_mappings: Mapping[str, str] | None, prefix: str | None) -> str:
    """CHIP-9: the model output ``field`` renamed by ``outputMappings`` then prefixed.

    ``embedding`` + mapping ``query_embedding`` + prefix ``qe`` -> ``qe_query_embedding``.
    """
    mapped = (output_mappings or {}).get(field, field)
    return f"{prefix}_{mapped}" if prefix else mapped


def split_table(fq_table: str) -> tuple[str, str]:
    """``ns.table`` -> ``("ns", "table")``; a bare table lands in the ``default`` namespace."""
    namespace, dot, table = fq_table.partition(".")
    return (namespace, table) if dot else ("default", namespace)
