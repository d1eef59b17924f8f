"""Deterministic sample source tables for the project's configs (and the shared reference repo).

Tables (partitioned by ``ds``, ``ts`` in epoch millis UTC):

* ``search_data.search_events``  — user_id, item_id, query, ts
* ``search_data.item_clicks``    — item_id, click_id, dwell_time_ms, ts (about 3 % arrive a day late:
  their ts is on the previous day)
* ``search_data.items_snapshot`` — item_id, category, price_cents (a full catalog snapshot per day)
* ``payments.card_transactions`` — txn_id, user_id, merchant_id, amount_cents, ts

Every (seed, table, ds) has its own random stream, so regenerating any sub-range gives the same
rows. Written with pyarrow through :func:`warehouse.staging_path` / :func:`warehouse.commit_partition`.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chronon_airflow import warehouse
from chronon_airflow.partitions import ds_range

DAY_MS = 86_400_000
USERS = [f"u{i:03d}" for i in range(60)]
ITEMS = [f"i{i:03d}" for i in range(40)]
MERCHANTS = [f"m{i:02d}" for i in range(15)]
CATEGORIES = ["shoes", "books", "kitchen", "garden", "toys"]
QUERIES = ["red shoes", "running shoes", "cookbook", "garden hose", "lego set", "chef knife",
           "sci-fi novel", "watering can", "puzzle", "hiking boots"]

TABLES = {
    "search_data.search_events": 1,
    "search_data.item_clicks": 2,
    "search_data.items_snapshot": 3,
    "payments.card_transactions": 4,
}


def _rng(seed: int, table: str, ds: str) -> np.random.Generator:
    day = (dt.date.fromisoformat(ds) - dt.date(1970, 1, 1)).days
    return np.random.default_rng([seed, TABLES[table], day])


def _day_start_ms(ds: str) -> int:
    return (dt.date.fromisoformat(ds) - dt.date(1970, 1, 1)).days * DAY_MS


def _ts(rng: np.random.Generator, ds: str, n: int) -> np.ndarray:
    return np.sort(_day_start_ms(ds) + rng.integers(0, DAY_MS, n)).astype("int64")


def search_events(seed: int, ds: str) -> pa.Table:
    rng = _rng(seed, "search_data.search_events", ds)
    n = int(rng.integers(180, 260))
    queries = []
    for q in rng.choice(QUERIES, n):
        # Messy casing and padding, which the config's lower(trim(query)) cleans up.
        q = q.upper() if rng.random() < 0.2 else q
        queries.append(f"  {q} " if rng.random() < 0.2 else q)
    return pa.table({
        "user_id": pa.array(rng.choice(USERS, n).tolist(), pa.string()),
        "item_id": pa.array(rng.choice(ITEMS, n).tolist(), pa.string()),
        "query": pa.array(queries, pa.string()),
        "ts": pa.array(_ts(rng, ds, n), pa.int64()),
    })


def item_clicks(seed: int, ds: str) -> pa.Table:
    rng = _rng(seed, "search_data.item_clicks", ds)
    n = int(rng.integers(250, 350))
    ts = _ts(rng, ds, n)
    late = rng.random(n) < 0.03
    # Late arrivals: happened in the last hours of the previous day, landed in this partition.
    ts = np.where(late, _day_start_ms(ds) - rng.integers(1, 6 * 3_600_000, n), ts).astype("int64")
    day = ds.replace("-", "")
    return pa.table({
        "item_id": pa.array(rng.choice(ITEMS, n).tolist(), pa.string()),
        "click_id": pa.array([f"c{day}-{i:05d}" for i in range(n)], pa.string()),
        "dwell_time_ms": pa.array(rng.integers(200, 120_000, n).astype("int64"), pa.int64()),
        "ts": pa.array(ts, pa.int64()),
    })


def items_snapshot(seed: int, ds: str) -> pa.Table:
    # The catalog itself is stable (seeded per item); prices drift a little per day.
    base = np.random.default_rng([seed, TABLES["search_data.items_snapshot"]])
    categories = base.choice(CATEGORIES, len(ITEMS)).tolist()
    prices = base.integers(500, 50_000, len(ITEMS))
    drift = _rng(seed, "search_data.items_snapshot", ds).integers(-200, 201, len(ITEMS))
    return pa.table({
        "item_id": pa.array(ITEMS, pa.string()),
        "category": pa.array(categories, pa.string()),
        "price_cents": pa.array(np.maximum(prices + drift, 100).astype("int64"), pa.int64()),
    })


def card_transactions(seed: int, ds: str) -> pa.Table:
    rng = _rng(seed, "payments.card_transactions", ds)
    n = int(rng.integers(180, 260))
    day = ds.replace("-", "")
    return pa.table({
        "txn_id": pa.array([f"t{day}-{i:05d}" for i in range(n)], pa.string()),
        "user_id": pa.array(rng.choice(USERS, n).tolist(), pa.string()),
        "merchant_id": pa.array(rng.choice(MERCHANTS, n).tolist(), pa.string()),
        "amount_cents": pa.array(rng.lognormal(8.0, 1.0, n).astype("int64") + 50, pa.int64()),
        "ts": pa.array(_ts(rng, ds, n), pa.int64()),
    })


GENERATORS = {
    "search_data.search_events": search_events,
    "search_data.item_clicks": item_clicks,
    "search_data.items_snapshot": items_snapshot,
    "payments.card_transactions": card_transactions,
}


def _days(start_ds: str, end_ds: str) -> list[str]:
    if dt.date.fromisoformat(end_ds) < dt.date.fromisoformat(start_ds):
        raise ValueError(f"end {end_ds} is before start {start_ds}")
    return ds_range(start_ds, end_ds)


def generate(warehouse_root: str | os.PathLike, start_ds: str, end_ds: str, seed: int = 7,
             tables: list[str] | None = None) -> dict[str, int]:
    """Write every sample table for each ds in [start_ds, end_ds]; returns rows written per table."""
    counts: dict[str, int] = {}
    for table in tables or list(GENERATORS):
        if table not in GENERATORS:
            raise ValueError(f"unknown sample table {table!r} (known: {sorted(GENERATORS)})")
        counts[table] = 0
        for ds in _days(start_ds, end_ds):
            data = GENERATORS[table](seed, ds)
            staging = warehouse.staging_path(warehouse_root, table, ds)
            pq.write_table(data, Path(staging) / "part-00000.parquet")
            warehouse.commit_partition(warehouse_root, table, ds, staging)
            counts[table] += data.num_rows
    return counts
