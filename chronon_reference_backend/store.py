"""SQLite persistence of registrations and jobs, so both survive a backend restart.

One short-lived connection per operation (SQLite connections are not shareable across the request
threads and the job workers); WAL mode lets status polls read while a worker writes.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronon_airflow.backend.idempotency import canonical_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    model_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    model_json TEXT NOT NULL,
    registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transforms (
    join_name TEXT PRIMARY KEY,
    transforms_hash TEXT NOT NULL,
    join_json TEXT NOT NULL,
    registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    join_name TEXT NOT NULL,
    start_ds TEXT NOT NULL,
    end_ds TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    join_json TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (idempotency_key, created_at);
"""

ACTIVE = ("PENDING", "RUNNING")


@dataclass
class Job:
    job_id: str
    idempotency_key: str
    join_name: str
    start_ds: str
    end_ds: str
    status: str
    message: str
    join: dict[str, Any]


def model_hash(model: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical_json(model).encode()).hexdigest()


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Serialises find-or-create of jobs inside this process (the server is one process).
        self._submit_lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:  # commits on success, rolls back on error
                yield db
        finally:
            db.close()

    # -- registrations ------------------------------------------------------------------------
    def put_model(self, model: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
                       (model_hash(model), model["metaData"]["name"], canonical_json(model), time.time()))

    def has_model(self, model: dict[str, Any]) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM models WHERE model_hash = ?", (model_hash(model),)).fetchone() is not None

    def put_transform(self, join_name: str, transforms_hash: str, join: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO transforms VALUES (?, ?, ?, ?)",
                       (join_name, transforms_hash, canonical_json(join), time.time()))

    def transform_hash(self, join_name: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT transforms_hash FROM transforms WHERE join_name = ?", (join_name,)).fetchone()
            return row["transforms_hash"] if row else None

    # -- jobs ---------------------------------------------------------------------------------
    def find_or_create_job(self, idempotency_key: str, join_name: str, start_ds: str, end_ds: str,
                           join: dict[str, Any]) -> tuple[Job, bool]:
        """The latest job for the key unless it ended FAILED/CANCELLED (then a fresh attempt, so that
        clearing a failed run retries it); returns ``(job, created)``."""
        with self._submit_lock, self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE idempotency_key = ? ORDER BY created_at DESC LIMIT 1",
                             (idempotency_key,)).fetchone()
            if row is not None and row["status"] not in ("FAILED", "CANCELLED"):
                return self._job(row), False
            now = time.time()
            job_id = f"job-{uuid.uuid4().hex}"
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, 'PENDING', 'queued', ?, ?, ?)",
                       (job_id, idempotency_key, join_name, start_ds, end_ds, canonical_json(join), now, now))
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            return self._job(row), True

    def get_job(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            return self._job(row) if row else None

    def set_status(self, job_id: str, status: str, message: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE jobs SET status = ?, message = ?, updated_at = ? WHERE job_id = ?",
                       (status, message, time.time(), job_id))

    def active_jobs(self) -> list[Job]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY created_at", ACTIVE).fetchall()
            return [self._job(r) for r in rows]

    def job_counts(self) -> dict[str, int]:
        with self._connect() as db:
            return {r["status"]: r["n"] for r in db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")}

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        return Job(job_id=row["job_id"], idempotency_key=row["idempotency_key"], join_name=row["join_name"],
                   start_ds=row["start_ds"], end_ds=row["end_ds"], status=row["status"], message=row["message"],
                   join=json.loads(row["join_json"]))
