"""Test support for the model backend tests: start the real reference backend in a subprocess on a
free loopback port (chronon_reference_backend.process), register joins, build batch-job
triggers, and write raw-join (_pre_mt) partitions into its warehouse."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from chronon_airflow import naming, warehouse
from chronon_reference_backend.process import BackendProcess
from chronon_reference_backend.process import start_backend as start_backend_process
from tests.support.paths import CONFIGS

# Backend "reference"'s Airflow connection, by the documented env-var convention.
CONN_ENV = "AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE"


def load_join(rel: str) -> dict:
    """A compiled join of the project's configs/, e.g. ``search/query_relevance.v1``."""
    return json.loads((CONFIGS / "production" / "joins" / rel).read_text())


def start_backend(home: Path, port: int, warehouse_root: Path, admin: bool = True) -> BackendProcess:
    """The reference backend serving the project's configs/; admin (fault) endpoints by flag only."""
    env = {k: v for k, v in os.environ.items() if k != "CHRONON_BACKEND_ENABLE_ADMIN"}
    return start_backend_process(home, warehouse_root, CONFIGS, port, admin=admin, env=env)


@contextmanager
def running_backend(root: Path, *joins: str) -> Iterator[BackendProcess]:
    """The reference backend under ``root`` on a free port, with ``joins`` (configs/ paths such as
    ``search/query_relevance.v1``) registered; stopped on exit."""
    from chronon_airflow.backend.http import HttpModelBackend
    from tests.support.net import free_port

    b = start_backend(root / "home", free_port(), root / "warehouse")
    try:
        with HttpModelBackend(b.url) as c:
            for rel in joins:
                register_join(c, load_join(rel))
        yield b
    finally:
        b.stop()


def register_join(client, join: dict):
    """Register the join's models, then its model transform (each must succeed)."""
    for t in join["modelTransforms"]["transforms"]:
        r = client.register_model(t["model"])
        assert r.is_success, r.message
    r = client.register_model_transform(join)
    assert r.is_success, r.message
    return r


async def first_event(trigger):
    async for event in trigger.run():
        return event.payload
    raise AssertionError("trigger ended without an event")


def trigger_for(job_id: str, start: str, end: str | None = None, poll_interval: float = 0.05, **kwargs):
    """A batch-job trigger for backend "reference", polling every 50 ms unless told (``end`` defaults
    to ``start``)."""
    from chronon_airflow.triggers.model_batch_job import ModelBatchJobTrigger

    return ModelBatchJobTrigger(job_id=job_id, start_ds=start, end_ds=end or start, backend="reference",
                                poll_interval=poll_interval, **kwargs)


def write_pre_mt(root: Path, join: dict, ds: str, frame: pd.DataFrame) -> str:
    """Commit ``frame`` as partition ``ds`` of the join's _pre_mt table, the way a writer must."""
    meta = join["metaData"]
    table = naming.pre_mt_table(meta["outputNamespace"], meta["name"])
    staging = warehouse.staging_path(root, table, ds)
    frame.to_parquet(staging / "part-00000.parquet", index=False)
    warehouse.commit_partition(root, table, ds, staging)
    return table


def query_relevance_rows(ds: str) -> pd.DataFrame:
    ts = pd.Timestamp(ds).value // 10**6
    return pd.DataFrame({
        "user_id": ["u1", "u2", "u3"],
        "item_id": ["i1", "i2", "i1"],
        "query_text": ["red running shoes", "wireless headphones", "red running shoes"],
        "ts": [ts + 1000, ts + 2000, ts + 3000],
        "search_item_clicks_v1_click_id_count_1d": [1, 0, 2],
        "search_item_clicks_v1_click_id_count_7d": [3, 1, 4],
        "search_item_clicks_v1_dwell_time_ms_sum_1d": [100, 0, 50],
        "search_item_clicks_v1_dwell_time_ms_sum_7d": [900, 30, 400],
        "item_dwell_per_click_7d": [300.0, 30.0, 100.0],
    })


def wait_for_job(client, job_id: str, start_ds: str, end_ds: str, timeout: float = 30.0):
    deadline = time.time() + timeout
    while True:
        status = client.get_model_batch_job_status(job_id, start_ds, end_ds)
        if status.is_terminal or time.time() > deadline:
            return status
        time.sleep(0.1)
