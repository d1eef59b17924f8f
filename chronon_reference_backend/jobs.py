"""Batch jobs: read ``<output>_pre_mt`` partitions [start_ds, end_ds], run the models, write the
join's output table one partition per ds. Jobs run on a worker thread pool, never on a request
thread; each state change goes to SQLite, which is what ``getModelBatchJobStatus`` reads."""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from chronon_airflow import naming, warehouse
from chronon_airflow.partitions import ds_range
from chronon_reference_backend import transform
from chronon_reference_backend.store import Store

log = logging.getLogger(__name__)


class JobFailure(Exception):
    """Ends a job as FAILED with this message."""


def date_range(start_ds: str, end_ds: str) -> list[str]:
    if dt.date.fromisoformat(end_ds) < dt.date.fromisoformat(start_ds):
        raise ValueError(f"endDs {end_ds} is before startDs {start_ds}")
    return ds_range(start_ds, end_ds)


def tables(join: dict[str, Any]) -> tuple[str, str]:
    """``(pre_mt input table, output table)`` of a join."""
    meta = join["metaData"]
    namespace = meta.get("outputNamespace")
    if not namespace:
        raise JobFailure(f"join {meta['name']} has no metaData.outputNamespace, so its tables cannot be named")
    return naming.pre_mt_table(namespace, meta["name"]), naming.output_table(namespace, meta["name"])


def run_batch(join: dict[str, Any], start_ds: str, end_ds: str, home: Path, root: Path,
              progress: Callable[[str], None]) -> str:
    """Do the work of one job; returns the success message, raises JobFailure otherwise."""
    source, target = tables(join)
    days = date_range(start_ds, end_ds)
    missing = [ds for ds in days if not warehouse.has_partition(root, source, ds)]
    if missing:
        raise JobFailure(f"missing input partitions {', '.join('ds=' + d for d in missing)} of table {source} "
                         f"(warehouse {root})")
    try:
        loaded = transform.load_models(home, join)
    except transform.TransformError as e:
        raise JobFailure(str(e)) from e
    rows = 0
    for i, ds in enumerate(days, 1):
        frame = pd.read_parquet(warehouse.partition_path(root, source, ds))
        frame = frame.drop(columns=[c for c in ("ds",) if c in frame.columns])
        try:
            result = transform.apply(join, frame, loaded, where=f"{source} ds={ds}")
        except transform.TransformError as e:
            raise JobFailure(str(e)) from e
        staging = warehouse.staging_path(root, target, ds)
        result.to_parquet(staging / "part-00000.parquet", index=False)
        warehouse.commit_partition(root, target, ds, staging)
        rows += len(result)
        progress(f"wrote {i}/{len(days)} partitions of {target}")
    return f"wrote {len(days)} partitions ({rows} rows) of {target} from {source}"


class JobRunner:
    def __init__(self, store: Store, home: Path, root: Path, workers: int = 2,
                 should_fail: Callable[[str], str | None] | None = None,
                 delay: Callable[[], float] | None = None):
        self.store, self.home, self.root = store, Path(home), Path(root)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model-batch-job")
        # Fault injection hook: returns a failure message for a join name, or None.
        self._should_fail = should_fail or (lambda _join: None)
        self._delay = delay or (lambda: 0.0)

    def submit(self, job_id: str) -> None:
        self._pool.submit(self._run, job_id)

    def resume_interrupted(self) -> int:
        """Re-run jobs a previous server process left PENDING/RUNNING. Safe because each partition is
        written to staging and renamed into place: a re-run rewrites whole partitions."""
        jobs = self.store.active_jobs()
        for job in jobs:
            self.store.set_status(job.job_id, "PENDING", "resumed after a backend restart interrupted it")
            self.submit(job.job_id)
        return len(jobs)

    def shutdown(self) -> None:
        # Jobs still running stay RUNNING in SQLite and are resumed by the next start.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        job = self.store.get_job(job_id)
        if job is None:
            return
        try:  # naming the tables can fail too: every failure ends the job FAILED with its reason
            self.store.set_status(job_id, "RUNNING", f"reading {tables(job.join)[0]}")
            delay = self._delay()
            if delay:
                time.sleep(delay)
            injected = self._should_fail(job.join_name)
            if injected:
                raise JobFailure(injected)
            message = run_batch(job.join, job.start_ds, job.end_ds, self.home, self.root,
                                lambda m: self.store.set_status(job_id, "RUNNING", m))
        except JobFailure as e:
            self.store.set_status(job_id, "FAILED", str(e))
            return
        except Exception as e:  # anything unexpected still ends the job with a reason, never silently
            log.exception("model batch job %s crashed", job_id)
            self.store.set_status(job_id, "FAILED", f"internal error: {type(e).__name__}: {e}")
            return
        self.store.set_status(job_id, "SUCCEEDED", message)
