"""Plain description of every DAG chronon-airflow generates. No Airflow import: the render layer
turns each :class:`PlannedDag` into an Airflow DAG one-to-one, and ``chronon-airflow plan --json``
prints it for review."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # a task start unpickles one PlannedDag and never needs the config classes
    from chronon_airflow.config.model import ConfigError

# DAG kinds.
JOIN_BACKFILL = "join_backfill"
METADATA_UPLOAD = "metadata_upload"
GROUP_BY_UPLOAD = "group_by_upload"
GROUP_BY_BACKFILL = "group_by_backfill"
GROUP_BY_STREAMING = "group_by_streaming"

# Task kinds.
WAIT_FOR_PARTITION = "wait_for_partition"
RAW_JOIN = "raw_join"
REGISTER_MODEL = "register_model"
REGISTER_MODEL_TRANSFORM = "register_model_transform"
SUBMIT_BATCH_INFERENCE = "submit_batch_inference"
WAIT_FOR_BATCH_INFERENCE = "wait_for_batch_inference"
REGISTER_TEAM_MODEL_TRANSFORMS = "register_team_model_transforms"
GROUP_BY_UPLOAD_TASK = "group_by_upload"
GROUP_BY_BACKFILL_TASK = "group_by_backfill"
GROUP_BY_STREAMING_TASK = "group_by_streaming"



@dataclass(frozen=True, slots=True)
class PlannedTask:
    task_id: str
    kind: str
    upstream: tuple[str, ...] = ()
    # Kind-specific facts the renderer needs, e.g. {"table": ..., "lag_days": ...} for a sensor,
    # {"model": ...} for a registration, {"subcommand": ..., "mode": ...} for a Spark job.
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": self.task_id, "kind": self.kind, "upstream": list(self.upstream)}
        if "argv" in self.details:
            out["argv"] = list(self.details["argv"])
        return out


@dataclass(frozen=True, slots=True)
class PlannedDag:
    dag_id: str
    kind: str
    team: str
    schedule: str | None  # cron/@preset; None = manual only; "asset:<table>" = runs on that table's asset
    source: str  # config path relative to the repo root ("teams.json" for team DAGs)
    tasks: tuple[PlannedTask, ...]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    conf_name: str | None = None  # the join / GroupBy metaData.name (None for team DAGs)
    start_date: str | None = None
    owners: tuple[str, ...] = ()  # e-mail addresses to notify on failure
    queue: str | None = None
    tags: tuple[str, ...] = ()
    # Per-kind facts for rendering and doc_md (models, backends, conf paths of member joins ...).
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "kind": self.kind,
            "team": self.team,
            "schedule": self.schedule,
            "source": self.source,
            "tasks": [t.to_dict() for t in self.tasks],
            "reads": list(self.reads),
            "writes": list(self.writes),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    dags: tuple[PlannedDag, ...]
    errors: tuple[ConfigError, ...]

    def dag(self, dag_id: str) -> PlannedDag:
        return next(d for d in self.dags if d.dag_id == dag_id)

    def to_dict(self) -> dict[str, Any]:
        return {"dags": [d.to_dict() for d in self.dags], "errors": [e.to_dict() for e in self.errors]}
