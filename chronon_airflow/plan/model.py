"""Plain description of every DAG chronon-airflow generates. No Airflow import: the render layer
turns each :class:`PlannedDag` into an Airflow DAG one-to-one, and ``chronon-airflow plan --json``
prints it for review.

Every task carries a typed, frozen *spec* — one dataclass per task kind — holding everything the
renderer needs to build its operator: the renderer maps spec types to operators and derives nothing
from the compiled thrift itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # a task start unpickles one PlannedDag and never needs these modules
    from chronon_airflow.config.model import ConfigError
    from chronon_airflow.spark.job import SparkJob

# DAG kinds.
JOIN_BACKFILL = "join_backfill"
METADATA_UPLOAD = "metadata_upload"
GROUP_BY_UPLOAD = "group_by_upload"
GROUP_BY_BACKFILL = "group_by_backfill"
GROUP_BY_STREAMING = "group_by_streaming"
STAGING_QUERY = "staging_query"
CONSISTENCY = "consistency"
LOG_FLATTENING = "log_flattening"
CONFIG_ERRORS = "config_errors"
DAG_KINDS = (JOIN_BACKFILL, METADATA_UPLOAD, GROUP_BY_UPLOAD, GROUP_BY_BACKFILL, GROUP_BY_STREAMING, STAGING_QUERY,
             CONSISTENCY, LOG_FLATTENING, CONFIG_ERRORS)

# Task kinds (each is the ``kind`` of one spec class below).
WAIT_FOR_PARTITION = "wait_for_partition"
RAW_JOIN = "raw_join"
JOIN = "join"
LABEL_JOIN = "label_join"
STATS_SUMMARY = "stats_summary"
CONSISTENCY_METRICS = "consistency_metrics_compute"
LOG_FLATTENER = "log_flattener"
METADATA_UPLOAD_TASK = "metadata_upload"
STAGING_QUERY_TASK = "staging_query"
REGISTER_MODEL = "register_model"
REGISTER_MODEL_TRANSFORM = "register_model_transform"
SUBMIT_BATCH_INFERENCE = "submit_batch_inference"  # no longer planned: wait_for_batch_inference submits
WAIT_FOR_BATCH_INFERENCE = "wait_for_batch_inference"
CHECK_RANGE = "check_range"
REGISTER_TEAM_MODEL_TRANSFORMS = "register_team_model_transforms"
GROUP_BY_UPLOAD_TASK = "group_by_upload"
GROUP_BY_BACKFILL_TASK = "group_by_backfill"
GROUP_BY_STREAMING_TASK = "group_by_streaming"
CONFIG_ERROR_TASK = "config_error"


# -- task specs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    """What a partition wait waits for: for each ds of a run, partition ``ds - lag`` of ``table``
    (``<column>=<that ds>`` plus the static ``subpartitions``), if it lies within ``[start, end]``."""

    table: str
    column: str = "ds"
    subpartitions: tuple[tuple[str, str], ...] = ()
    lag: int = 0
    start: str | None = None
    end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "column": self.column, "subpartitions": dict(self.subpartitions),
                "lag": self.lag, "start": self.start, "end": self.end}


class TaskSpec:
    """Base of the task specs; ``kind`` names the task kind in the plan JSON."""

    __slots__ = ()
    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """Kind-specific fields of the plan JSON contract."""
        return {}


@dataclass(frozen=True, slots=True)
class WaitForPartition(TaskSpec):
    kind: ClassVar[str] = WAIT_FOR_PARTITION
    partition: Partition

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition.to_dict()}


@dataclass(frozen=True, slots=True)
class SparkStep(TaskSpec):
    """A Chronon Spark job: the job description and its full spark-submit argv for the deployment's
    connection (run dates as ``<start_ds>``/``<end_ds>`` placeholders). ``updates``: the tables
    whose Airflow Asset its success updates (with the run's range in the event's extra)."""

    kind: ClassVar[str] = ""
    job: SparkJob
    argv: tuple[str, ...]
    updates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"argv": list(self.argv)}
        if self.updates:
            out["updates"] = list(self.updates)
        return out


@dataclass(frozen=True, slots=True)
class RawJoin(SparkStep):
    """The Chronon join of a join with model transforms: it writes ``<output>_pre_mt``."""

    kind: ClassVar[str] = RAW_JOIN


@dataclass(frozen=True, slots=True)
class JoinStep(SparkStep):
    """The Chronon join of a join without model transforms: it writes the output table."""

    kind: ClassVar[str] = JOIN


@dataclass(frozen=True, slots=True)
class LabelJoin(SparkStep):
    kind: ClassVar[str] = LABEL_JOIN


@dataclass(frozen=True, slots=True)
class StatsSummary(SparkStep):
    kind: ClassVar[str] = STATS_SUMMARY


@dataclass(frozen=True, slots=True)
class ConsistencyMetrics(SparkStep):
    kind: ClassVar[str] = CONSISTENCY_METRICS


@dataclass(frozen=True, slots=True)
class LogFlattener(SparkStep):
    kind: ClassVar[str] = LOG_FLATTENER


@dataclass(frozen=True, slots=True)
class MetadataUpload(SparkStep):
    """Chronon's ``metadata-upload`` of a team's joins to the online KV store."""

    kind: ClassVar[str] = METADATA_UPLOAD_TASK


@dataclass(frozen=True, slots=True)
class StagingQueryBackfill(SparkStep):
    kind: ClassVar[str] = STAGING_QUERY_TASK


@dataclass(frozen=True, slots=True)
class GroupByUpload(SparkStep):
    kind: ClassVar[str] = GROUP_BY_UPLOAD_TASK


@dataclass(frozen=True, slots=True)
class GroupByBackfill(SparkStep):
    kind: ClassVar[str] = GROUP_BY_BACKFILL_TASK


@dataclass(frozen=True, slots=True)
class GroupByStreaming(SparkStep):
    kind: ClassVar[str] = GROUP_BY_STREAMING_TASK


@dataclass(frozen=True, slots=True)
class RegisterModel(TaskSpec):
    kind: ClassVar[str] = REGISTER_MODEL
    model: dict[str, Any]  # the compiled Model (thrift-JSON), sent as is
    name: str
    backend: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.name, "backend": self.backend}


@dataclass(frozen=True, slots=True)
class _JoinCall(TaskSpec):
    """A join-level CHIP-9 call: the compiled join and the one backend that runs it."""

    kind: ClassVar[str] = ""
    join: dict[str, Any]  # the compiled join (thrift-JSON): the operators take exactly a dict
    backend: str

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend}


@dataclass(frozen=True, slots=True)
class RegisterModelTransform(_JoinCall):
    kind: ClassVar[str] = REGISTER_MODEL_TRANSFORM


@dataclass(frozen=True, slots=True)
class WaitForBatchInference(_JoinCall):
    """Submits the join's model batch job (idempotently) and waits for it, deferred: one task, so
    that its retry submits again, and a job that ended FAILED or CANCELLED is replaced by a new one
    (a running or succeeded job of the same key is reused)."""

    kind: ClassVar[str] = WAIT_FOR_BATCH_INFERENCE
    output_table: str = ""  # the Asset the job's success updates


@dataclass(frozen=True, slots=True)
class CheckRange(TaskSpec):
    """The first task of a DAG that computes a partition range: it resolves the run's range and
    fails (before any task touches a backend or Spark) when it is invalid, reversed, too long, or
    given to an Airflow backfill."""

    kind: ClassVar[str] = CHECK_RANGE


@dataclass(frozen=True, slots=True)
class RegisterTeamModelTransforms(TaskSpec):
    kind: ClassVar[str] = REGISTER_TEAM_MODEL_TRANSFORMS
    join_paths: tuple[str, ...]  # relative to the repo root: re-read at run time
    join_names: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"joins": list(self.join_names)}


@dataclass(frozen=True, slots=True)
class ReportConfigErrors(TaskSpec):
    """One broken file of the repo: the task fails with its errors."""

    kind: ClassVar[str] = CONFIG_ERROR_TASK
    path: str
    errors: tuple[ConfigError, ...]
    recipients: tuple[str, ...] = ()  # maintainers of the team the file belongs to

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "errors": [e.to_dict() for e in self.errors]}


# -- tasks and DAGs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedTask:
    task_id: str
    spec: TaskSpec
    upstream: tuple[str, ...] = ()
    # The tables this task reads and writes (its lineage).
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # Why this task skips in this deployment (e.g. a step the local engine cannot run); None: it runs.
    skip_reason: str | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_dict(self) -> dict[str, Any]:
        out = {"task_id": self.task_id, "kind": self.kind, "upstream": list(self.upstream), **self.spec.to_dict()}
        if self.reads:
            out["reads"] = list(self.reads)
        if self.writes:
            out["writes"] = list(self.writes)
        if self.skip_reason:
            out["skip_reason"] = self.skip_reason
        return out


@dataclass(frozen=True, slots=True)
class ModelDoc:
    """A model as the DAG's documentation lists it (params are redacted when rendered)."""

    name: str
    backend: str
    params: tuple[tuple[str, str], ...]


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
    conf_name: str | None = None  # the join / GroupBy / staging query metaData.name (None for team DAGs)
    start_date: str | None = None
    owners: tuple[str, ...] = ()  # e-mail addresses to notify on failure
    queue: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None  # the config's own metaData.description (for the DAG's docs)
    summary: str = ""  # one line saying what the DAG does (the DAG's description in the UI)
    # The config files (relative to the repo root) this DAG is built from, teams.json included: a
    # change to any other file cannot change it. None: the whole repo (the config-errors DAG).
    inputs: tuple[str, ...] | None = ()
    # Documentation facts: the models of a join, the member joins of a team DAG.
    models: tuple[ModelDoc, ...] = ()
    members: tuple[str, ...] = ()
    # Whether a manual trigger takes a start_ds/end_ds range.
    takes_range: bool = True

    def task(self, task_id: str) -> PlannedTask:
        return next(t for t in self.tasks if t.task_id == task_id)

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
            "queue": self.queue,
            "owners": list(self.owners),
            "start_date": self.start_date,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    dags: tuple[PlannedDag, ...]
    errors: tuple[ConfigError, ...]
    # Problems that do not stop a DAG but will fail a task until fixed (a placeholder setting, a
    # connection the deployment lacks); `validate` prints them without failing.
    warnings: tuple[ConfigError, ...] = field(default=())

    def dag(self, dag_id: str) -> PlannedDag:
        return next(d for d in self.dags if d.dag_id == dag_id)

    def to_dict(self) -> dict[str, Any]:
        return {"dags": [d.to_dict() for d in self.dags], "errors": [e.to_dict() for e in self.errors],
                "warnings": [w.to_dict() for w in self.warnings]}
