"""Test support for the model backend tests: start the real reference backend in a subprocess on a
free loopback port, and write raw-join (_pre_mt) partitions into its warehouse."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from chronon_airflow import naming, warehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = PROJECT_ROOT / "configs"


def load_join(rel: str) -> dict:
    """A compiled join of the project's configs/, e.g. ``search/query_relevance.v1``."""
    return json.loads((CONFIGS / "production" / "joins" / rel).read_text())


@dataclass
class Backend:
    url: str
    home: Path
    warehouse: Path
    process: subprocess.Popen
    log: Path

    def admin(self, method: str, path: str, **kwargs) -> dict:
        response = httpx.request(method, self.url + path, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_backend(home: Path, port: int, warehouse_root: Path, admin: bool = True) -> Backend:
    log = home.parent / f"backend-{port}.log"
    cmd = [sys.executable, "-m", "chronon_airflow.reference_backend", "serve", "--port", str(port),
           "--home", str(home), "--warehouse", str(warehouse_root), "--repo", str(CONFIGS)]
    if admin:
        cmd.append("--enable-admin")
    env = {k: v for k, v in os.environ.items() if k != "CHRONON_BACKEND_ENABLE_ADMIN"}
    process = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    backend = Backend(f"http://127.0.0.1:{port}", home, warehouse_root, process, log)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"reference backend exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(backend.url + "/healthz", timeout=1).status_code == 200:
                return backend
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    backend.stop()
    raise RuntimeError(f"reference backend did not come up on port {port}:\n{log.read_text()}")


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
