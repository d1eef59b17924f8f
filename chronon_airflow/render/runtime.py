"""How generated tasks and DAG runs are bounded, from ``[chronon]`` settings: task retries,
``execution_timeout`` per task kind, the Airflow pool of the Spark steps, ``dagrun_timeout``, and the
landing deadline of join DAGs. Read once per render from the deployment's settings (so the parse
cache key covers them); nothing here imports a DAG or an operator.

``[chronon] execution_timeouts`` is a JSON object over :data:`DEFAULT_TIMEOUTS`, keyed by task kind
(``raw_join``, ``register_model`` ...) or ``"spark"`` for every Chronon Spark step; a kind's own key
wins over ``"spark"``. ``0`` or ``null`` means no timeout. The partition waits and the batch-job
wait are bounded by their own settings (``sensor_timeout``, ``batch_job_timeout``), which hold
whether the wait is in a worker or deferred to the triggerer.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chronon_airflow import settings as chronon_settings
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.plan import model as pm

# The Chronon Spark step kinds (the "spark" key of execution_timeouts).
SPARK_KINDS = frozenset({
    pm.RAW_JOIN, pm.JOIN, pm.LABEL_JOIN, pm.STATS_SUMMARY, pm.CONSISTENCY_METRICS, pm.LOG_FLATTENER,
    pm.METADATA_UPLOAD_TASK, pm.STAGING_QUERY_TASK, pm.GROUP_BY_UPLOAD_TASK, pm.GROUP_BY_BACKFILL_TASK,
    pm.GROUP_BY_STREAMING_TASK,
})

# Seconds; None: no execution_timeout (a wait with its own timeout).
DEFAULT_TIMEOUTS: dict[str, float | None] = {
    "spark": 12 * 3600,
    pm.GROUP_BY_STREAMING_TASK: 3600,  # submits and returns once the application is accepted
    pm.REGISTER_MODEL: 1800,
    pm.REGISTER_MODEL_TRANSFORM: 1800,
    pm.REGISTER_TEAM_MODEL_TRANSFORMS: 3600,
    pm.CHECK_RANGE: 300,
    pm.CONFIG_ERROR_TASK: 300,
    pm.WAIT_FOR_PARTITION: None,
    pm.WAIT_FOR_BATCH_INFERENCE: None,
}


def _number(values: Mapping[str, str], key: str) -> float:
    raw = values.get(key) or chronon_settings.DEFAULTS[key]
    try:
        return float(raw)
    except ValueError:
        raise InvalidConfig(f"[chronon] {key}", f"{raw!r} is not a number") from None


def _seconds(value: Any) -> dt.timedelta | None:
    return dt.timedelta(seconds=float(value)) if value else None


@dataclass(frozen=True)
class Runtime:
    retries: int = 1
    retry_delay: dt.timedelta = dt.timedelta(minutes=5)
    timeouts: Mapping[str, float | None] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    spark_pool: str = "chronon_spark"
    dagrun_timeout: dt.timedelta | None = dt.timedelta(days=2)
    landing_deadline: dt.timedelta | None = dt.timedelta(hours=6)

    def execution_timeout(self, kind: str) -> dt.timedelta | None:
        if kind in self.timeouts:
            return _seconds(self.timeouts[kind])
        if kind in SPARK_KINDS:
            return _seconds(self.timeouts.get("spark"))
        return None

    def pool(self, kind: str) -> str | None:
        """The pool of a task of ``kind``: the Spark pool for Spark steps, else Airflow's default."""
        return (self.spark_pool or None) if kind in SPARK_KINDS else None

    def deadline_interval(self, schedule: str | None) -> dt.timedelta | None:
        """How long after a scheduled run is queued (when its data interval ended) its output is late:
        ``landing_deadline_hours``. ``None`` for an unscheduled or asset-scheduled DAG, or with the
        alert off."""
        if self.landing_deadline is None or not schedule or schedule.startswith("asset:"):
            return None
        return self.landing_deadline


def runtime(values: Mapping[str, str]) -> Runtime:
    """The :class:`Runtime` of ``[chronon]`` ``values`` (missing keys take their defaults)."""
    raw = values.get("execution_timeouts") or "{}"
    try:
        overrides = json.loads(raw)
        if not isinstance(overrides, dict):
            raise ValueError
        overrides = {str(k): (None if v in (None, 0) else float(v)) for k, v in overrides.items()}
    except (ValueError, TypeError):
        raise InvalidConfig("[chronon] execution_timeouts",
                            f"{raw!r} is not a JSON object of task kind -> seconds") from None
    hours = _number(values, "landing_deadline_hours")
    return Runtime(
        retries=int(_number(values, "retries")),
        retry_delay=dt.timedelta(seconds=_number(values, "retry_delay")),
        timeouts={**DEFAULT_TIMEOUTS, **overrides},
        spark_pool=values.get("spark_pool", chronon_settings.DEFAULTS["spark_pool"]),
        dagrun_timeout=_seconds(_number(values, "dagrun_timeout")),
        landing_deadline=dt.timedelta(hours=hours) if hours > 0 else None,
    )
