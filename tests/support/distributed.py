"""Helpers for the end-to-end tests on the distributed topology (tests/e2e/test_distributed.py):
where a task ran (Celery worker logs), the reference backend's batch jobs, the Spark cluster's
state, and the committed partitions of the parquet warehouse."""
from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from chronon_airflow import warehouse as wh
from chronon_demo.distributed import DistributedStack

# "Executing workload in Celery: ... log_path='dag_id=D/run_id=R/task_id=T/attempt=N.log'"
_WORKLOAD = re.compile(r"Executing workload in Celery: .*?log_path='dag_id=([^/]+)/run_id=([^/]+)/"
                       r"task_id=([^/]+)/attempt=(\d+)\.log'")
# Spark's own part files: part-<n>-<write job uuid>.c000.<codec>.parquet
_PART = re.compile(r"^part-\d+-([0-9a-f-]{36})")


def workloads(stack: DistributedStack, worker: str) -> set[tuple[str, str, str, int]]:
    """(dag_id, run_id, task_id, try) of every task the Celery worker ``worker`` received, read
    from its log (every process of that name: the log file is appended to across restarts)."""
    text = Path(stack.logs_dir / f"{worker}.log").read_text(errors="replace")
    return {(d, r, t, int(n)) for d, r, t, n in _WORKLOAD.findall(text)}


def backend_jobs(stack: DistributedStack, join: str, start: str, end: str) -> list[dict[str, Any]]:
    """The reference backend's batch jobs for ``join`` and exactly this range (its SQLite store)."""
    db = sqlite3.connect(f"file:{stack.backend_home / 'backend.sqlite3'}?mode=ro", uri=True, timeout=10)
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT job_id, status, start_ds, end_ds FROM jobs WHERE join_name = ? AND start_ds = ? "
                          "AND end_ds = ? ORDER BY created_at", (join, start, end)).fetchall()
        return [dict(r) for r in rows]
    finally:
        db.close()


def admin_job_total(stack: DistributedStack) -> int:
    """Every batch job the backend ever created (``GET /admin/jobs``)."""
    r = httpx.get(f"{stack.backend_url}/admin/jobs", timeout=10)
    r.raise_for_status()
    return int(r.json()["total"])


def assert_partitions_written_once(root: Path, table: str, days: list[str]) -> None:
    """Each day of ``days`` is a committed partition (``_SUCCESS``) holding the files of one Spark
    write only (one write-job id in its part files): none missing, none written twice."""
    for ds in days:
        path = wh.partition_path(root, table, ds)
        assert (path / wh.SUCCESS_MARKER).is_file(), f"{table} ds={ds}: no _SUCCESS ({path})"
        parts = [p.name for p in path.iterdir() if p.name.startswith("part-")]
        assert parts, f"{table} ds={ds}: no data file"
        jobs = {m.group(1) for m in map(_PART.match, parts) if m}
        assert len(jobs) <= 1, f"{table} ds={ds}: files of {len(jobs)} writes: {parts}"
    assert set(days) <= set(wh.list_partitions(root, table))


def assert_output_matches_raw(root: Path, raw_table: str, output_table: str, days: list[str]) -> None:
    """The model transform's output has each raw-join row exactly once (no partition written twice
    by two batch jobs, no rows lost)."""
    for ds in days:
        raw = pd.read_parquet(wh.partition_path(root, raw_table, ds))
        out = pd.read_parquet(wh.partition_path(root, output_table, ds))
        assert len(out) == len(raw) > 0, (ds, len(raw), len(out))
        # The columns both carry (a model transform may select a subset of the raw join's).
        keys = [c for c in raw.columns if c in out.columns
                and raw[c].map(lambda v: isinstance(v, (str, int, float))).all()]
        assert keys, f"{output_table} ds={ds} shares no column with {raw_table}"
        assert out.duplicated(subset=keys).sum() == raw.duplicated(subset=keys).sum(), ds


def task_log(stack: DistributedStack, dag_id: str, run_id: str, task_id: str, attempt: int) -> str:
    path = stack.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / \
        f"attempt={attempt}.log"
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def spark_worker_executors(stack: DistributedStack, worker: str) -> list[dict[str, Any]]:
    """The executors a Spark worker runs now (its web UI's JSON)."""
    port = stack.state["ports"][f"{worker}-ui"]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/json/", timeout=5).json().get("executors", [])
    except (httpx.HTTPError, ValueError):
        return []


def spark_executor_log(stack: DistributedStack, worker: str, app_id: str, executor_id: Any) -> str:
    """What executor ``executor_id`` of ``app_id`` on ``worker`` has written to stderr so far."""
    try:
        return (stack.spark_work_dir(worker) / app_id / str(executor_id) / "stderr").read_text(errors="replace")
    except OSError:
        return ""


def non_loopback_listeners(stack: DistributedStack) -> list[str]:
    """Listening sockets of the stack's processes (every one, descendants included: Spark drivers
    and executors too) on an address outside 127.0.0.0/8."""
    import ipaddress

    import psutil

    pids = {p.pid for p in DistributedStack._members(stack.state)}
    out = []
    for conn in psutil.net_connections("tcp"):
        if conn.status != psutil.CONN_LISTEN or conn.pid not in pids:
            continue
        ip = ipaddress.ip_address(conn.laddr.ip)
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (mapped or ip).is_loopback:
            out.append(f"{conn.laddr.ip}:{conn.laddr.port} (pid {conn.pid})")
    return out
