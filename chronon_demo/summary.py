"""Read the demo's results back from the parquet warehouse (pandas) and the mail sink."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from chronon_airflow import warehouse as wh
from chronon_demo.mail import read_messages


@dataclass
class TableSummary:
    table: str
    partitions: list[str]
    rows_in_range: int
    columns: list[str]


def read_partitions(root: str | os.PathLike, table: str, partitions: list[str]) -> pd.DataFrame:
    """The committed partitions of ``table`` as one frame with a ``ds`` column."""
    frames = []
    for ds in partitions:
        if not wh.has_partition(root, table, ds):
            continue
        df = pd.read_parquet(wh.partition_path(root, table, ds))
        df[wh.PARTITION_COLUMN] = ds
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarize_table(root: str | os.PathLike, table: str, ds_range: list[str]) -> TableSummary:
    partitions = wh.list_partitions(root, table)
    df = read_partitions(root, table, [d for d in ds_range if d in partitions])
    return TableSummary(table=table, partitions=partitions, rows_in_range=len(df), columns=list(df.columns))


def model_output_columns(root: str | os.PathLike, output_table: str, raw_table: str, ds: str) -> list[str]:
    """Columns the model transform added: in the output table, not in its raw join."""
    out = pd.read_parquet(wh.partition_path(root, output_table, ds)).columns
    raw = set(pd.read_parquet(wh.partition_path(root, raw_table, ds)).columns)
    return [c for c in out if c not in raw]


def _short(value: Any) -> str:
    """A cell for the printed table: long vectors as their first values and length."""
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes, dict)):
        values = list(value)
        head = ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in values[:3])
        return f"[{head}{', ...' if len(values) > 3 else ''}] ({len(values)})"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _ranges(partitions: list[str]) -> str:
    if not partitions:
        return "none"
    return partitions[0] if len(partitions) == 1 else f"{partitions[0]}..{partitions[-1]} ({len(partitions)})"


def render(root: str | os.PathLike, tables: list[str], ds_range: list[str], output_table: str, raw_table: str,
           mail_dir: str | os.PathLike | None, sample_rows: int = 5) -> str:
    """The printed summary: tables, partitions, rows; model outputs; e-mails received."""
    lines = [f"Warehouse {root}", "",
             f"  {'table':<58} {'partitions':<30} rows {ds_range[0]}..{ds_range[-1]}"]
    for t in tables:
        s = summarize_table(root, t, ds_range)
        lines.append(f"  {t:<58} {_ranges(s.partitions):<30} {s.rows_in_range}")
    present = [d for d in ds_range if wh.has_partition(root, output_table, d)]
    if present:
        cols = model_output_columns(root, output_table, raw_table, present[0])
        df = read_partitions(root, output_table, present)
        keys = [c for c in df.columns if c not in cols and c != "ds"][:3]
        lines += ["", f"Model outputs in {output_table} (columns added by the model transform: {', '.join(cols)}):"]
        with pd.option_context("display.width", 160, "display.max_columns", 12, "display.max_colwidth", 40):
            shown = df[["ds", *keys, *cols]].head(sample_rows).copy()
            for c in cols:
                shown[c] = shown[c].map(_short)
            lines += ["  " + line for line in shown.to_string(index=False).splitlines()]
        nulls = int(df[cols].isna().sum().sum()) if cols else 0
        lines.append(f"  {len(df)} rows, {nulls} null model outputs")
    if mail_dir is not None:
        messages = read_messages(mail_dir)
        lines += ["", f"E-mails received by the local SMTP sink ({mail_dir}): {len(messages)}"]
        lines += [f"  {m.subject}" for m in messages[-5:]]
    return "\n".join(lines)
