"""From a loaded repo and a deployment to the DAGs chronon-airflow generates. Pure: no Airflow
import, no I/O, no settings: ``build_plan(repo, deployment)`` depends on its arguments only."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from chronon_airflow.config.model import ConfigError, Dependency, GroupByConf, JoinConf, MetaData, Repo
from chronon_airflow.deployment import Deployment
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.plan import model as pm
from chronon_airflow.plan.model import (
    GroupByBackfill,
    GroupByStreaming,
    GroupByUpload,
    ModelDoc,
    Partition,
    Plan,
    PlannedDag,
    PlannedTask,
    RawJoin,
    RegisterModel,
    RegisterModelTransform,
    RegisterTeamModelTransforms,
    ReportConfigErrors,
    SparkStep,
    SubmitBatchInference,
    WaitForBatchInference,
    WaitForPartition,
)
from chronon_airflow.spark.env import env_sources
from chronon_airflow.spark.job import build_spark_job, job_warnings, spark_submit_argv

DAG_PREFIX = "chronon"
CONFIG_ERRORS_DAG_ID = "chronon.config_errors"
# The metadata-upload DAG re-registers every 20 minutes (CHIP-9 keeps backends in sync with configs).
METADATA_UPLOAD_SCHEDULE = "*/20 * * * *"
STREAMING_KEEPER_SCHEDULE = "*/20 * * * *"
_TASK_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
TEAMS_JSON = "teams.json"


def dag_id(kind: str, name: str) -> str:
    return f"{DAG_PREFIX}.{kind}.{name}"


def safe_task_id(text: str) -> str:
    return _TASK_ID_UNSAFE.sub("_", text)


def _schedule(meta: MetaData) -> str | None:
    return None if meta.offline_schedule == "@never" else meta.offline_schedule


@dataclass(frozen=True)
class _Owner:
    """Team facts every DAG of a config carries."""

    team: str
    owners: tuple[str, ...]
    queue: str | None
    start_date: str | None


def _owner(repo: Repo, meta: MetaData) -> _Owner:
    team = repo.teams[meta.team]
    return _Owner(meta.team, tuple(dict.fromkeys(team.maintainer_emails + meta.owners())), team.airflow_queue,
                  team.dag_start_date)


# -- dependencies ---------------------------------------------------------------------------------


def _merge_window(a: str | None, b: str | None, pick: Callable[[str, str], str]) -> str | None:
    return None if a is None or b is None else pick(a, b)


def partition_waits(deps: Iterable[Dependency]) -> list[PlannedTask]:
    """One wait per distinct (table, partition column, sub-partitions, lag), in first-seen order.

    Two entries for the same partition (the compiler repeats a source's dependency per join part)
    become one wait whose window spans both (the earliest start to the latest end; an open side
    stays open). Task ids are the compiler's dependency names; distinct waits that share a name get
    a numbered suffix so neither is lost.
    """
    merged: dict[tuple, tuple[str, Partition]] = {}
    for d in deps:
        if d.key in merged:
            name, p = merged[d.key]
            merged[d.key] = (name, Partition(p.table, p.column, p.subpartitions, p.lag,
                                             _merge_window(p.start, d.start, min), _merge_window(p.end, d.end, max)))
        else:
            merged[d.key] = (d.name, Partition(d.table, d.partition_column, d.subpartitions, d.lag_days,
                                               d.start, d.end))
    tasks, seen = [], set()
    for name, partition in merged.values():
        tid = base = safe_task_id(name)
        n = 1
        while tid in seen:
            n += 1
            tid = f"{base}_{n}"
        seen.add(tid)
        tasks.append(PlannedTask(tid, WaitForPartition(partition)))
    return tasks


def _tables(deps: Iterable[Dependency]) -> list[str]:
    return [d.table for d in deps]


# -- the planner ----------------------------------------------------------------------------------


class Planner:
    def __init__(self, repo: Repo, deployment: Deployment):
        self.repo = repo
        self.deployment = deployment
        self.errors: list[ConfigError] = list(repo.errors)
        self.warnings: dict[tuple[str, str, str], ConfigError] = {}

    # -- Spark jobs --

    def spark(self, spec_cls: type[SparkStep], conf, conf_type: str, mode: str) -> SparkStep:
        """The Spark step of ``conf`` in ``mode``; raises InvalidConfig for a value that must not
        reach a command line (the caller drops the DAG and records the error)."""
        d = self.deployment
        # build_spark_job only reads the config: the loaded JSON itself, no defensive copy.
        job = build_spark_job(conf.raw, str(Path(self.repo.root) / conf.path), mode, self.repo.teams_json,
                              conf_type=conf_type, engine=d.engine, env=d.env, chronon_jar=d.chronon_jar,
                              chronon_version=d.chronon_version)
        sources = None
        for field, message in job_warnings(job):
            if field.startswith("env "):
                sources = sources or env_sources(conf.raw, self.repo.teams_json, conf.metadata.team, mode, d.env)
                key = field[len("env "):]
                where = sources.get(key, "")
                path, field = (TEAMS_JSON, f"{where}.{key}") if not where.startswith("metaData") else \
                    (conf.path, f"metaData.modeToEnvMap.{mode}.{key}")
            else:
                path = conf.path
            warning = ConfigError(path, field, message)
            self.warnings.setdefault((warning.path, warning.field, warning.message), warning)
        return spec_cls(job=job, argv=tuple(spark_submit_argv(job, d.spark)))

    def guarded(self, conf, build: Callable[[], PlannedDag]) -> list[PlannedDag]:
        """``build()``'s DAG, or none and a config error when a value cannot be used."""
        try:
            return [build()]
        except InvalidConfig as e:
            self.errors.append(ConfigError(conf.path, e.field or "metaData", e.message))
            return []

    # -- joins --

    def join_backfill(self, join: JoinConf) -> PlannedDag:
        owner = _owner(self.repo, join.metadata)
        waits = partition_waits(join.metadata.dependencies)
        wait_ids = tuple(t.task_id for t in waits)
        tasks = list(waits)
        tasks.append(PlannedTask(pm.RAW_JOIN, self.spark(RawJoin, join, "joins", "backfill"), wait_ids))
        # Registration needs no data: it runs beside the sensors and the raw join, so a model the
        # backend rejects fails the run before hours of Spark, and submission waits for both.
        thrift = join.thrift()
        backend = join.transform_backend
        register_ids = []
        for model in join.models:
            tid = f"register_model.{safe_task_id(model.name)}"
            register_ids.append(tid)
            tasks.append(PlannedTask(tid, RegisterModel(model=model.thrift(), name=model.name, backend=model.backend)))
        tasks.append(PlannedTask(pm.REGISTER_MODEL_TRANSFORM, RegisterModelTransform(thrift, backend),
                                 tuple(register_ids)))
        tasks.append(PlannedTask(pm.SUBMIT_BATCH_INFERENCE, SubmitBatchInference(thrift, backend),
                                 (pm.RAW_JOIN, pm.REGISTER_MODEL_TRANSFORM)))
        tasks.append(PlannedTask(pm.WAIT_FOR_BATCH_INFERENCE,
                                 WaitForBatchInference(thrift, backend, output_table=join.output_table),
                                 (pm.SUBMIT_BATCH_INFERENCE,)))
        return PlannedDag(
            dag_id=dag_id(pm.JOIN_BACKFILL, join.name),
            kind=pm.JOIN_BACKFILL,
            team=owner.team,
            schedule=_schedule(join.metadata),
            source=join.path,
            tasks=tuple(tasks),
            reads=_join_reads(join),
            writes=(join.pre_mt_table, join.output_table),
            conf_name=join.name,
            start_date=owner.start_date or join.left.query.start_partition,
            owners=owner.owners,
            queue=owner.queue,
            tags=(join.team, "chronon", *join.backends),
            description=join.metadata.description,
            inputs=(join.path, TEAMS_JSON),
            models=tuple(ModelDoc(m.name, m.backend, tuple(sorted(m.backend_params.items()))) for m in join.models),
        )

    def metadata_upload(self, team: str, joins: list[JoinConf]) -> PlannedDag:
        t = self.repo.teams[team]
        backends = tuple(dict.fromkeys(b for j in joins for b in j.backends))
        names = tuple(j.name for j in joins)
        return PlannedDag(
            dag_id=dag_id(pm.METADATA_UPLOAD, team),
            kind=pm.METADATA_UPLOAD,
            team=team,
            schedule=METADATA_UPLOAD_SCHEDULE,
            source=TEAMS_JSON,
            tasks=(PlannedTask(pm.REGISTER_TEAM_MODEL_TRANSFORMS,
                               RegisterTeamModelTransforms(tuple(j.path for j in joins), names)),),
            reads=(),
            writes=(),
            owners=t.maintainer_emails,
            queue=t.airflow_queue,
            start_date=t.dag_start_date,
            tags=(team, "chronon", *backends),
            inputs=(*(j.path for j in joins), TEAMS_JSON),
            members=names,
            takes_range=False,
        )

    # -- GroupBys --

    def group_by(self, gb: GroupByConf, parent: JoinConf) -> list[PlannedDag]:
        owner = _owner(self.repo, gb.metadata)
        parent_table = parent.output_table
        # The GroupBy's own dependencies (the compiler lists the parent's output partition among
        # them); the parent table is waited for in any case.
        deps = list(gb.metadata.dependencies)
        if parent_table not in _tables(deps):
            deps.append(Dependency(f"wait_for_{parent_table}", f"{parent_table}/ds={{{{ ds }}}}", parent_table, "ds",
                                   (), 0, None, None))
        waits = partition_waits(deps)
        wait_ids = tuple(t.task_id for t in waits)
        reads = tuple(dict.fromkeys(_tables(deps)))

        def dag(kind: str, schedule: str | None, tasks: list[PlannedTask], writes: tuple[str, ...],
                reads: tuple[str, ...] = reads) -> PlannedDag:
            return PlannedDag(
                dag_id=dag_id(kind, gb.name), kind=kind, team=owner.team, schedule=schedule, source=gb.path,
                tasks=tuple(tasks), reads=reads, writes=writes, conf_name=gb.name, start_date=owner.start_date,
                owners=owner.owners, queue=owner.queue, tags=(gb.metadata.team, "chronon", "group_by"),
                description=gb.metadata.description, inputs=(gb.path, parent.path, TEAMS_JSON))

        dags: list[PlannedDag] = []
        if gb.metadata.online:
            dags += self.guarded(gb, lambda: dag(
                # The parent's output asset triggers it; the partition range comes from the asset event.
                pm.GROUP_BY_UPLOAD, f"asset:{parent_table}",
                [*waits, PlannedTask(pm.GROUP_BY_UPLOAD_TASK, self.spark(GroupByUpload, gb, "group_bys", "upload"),
                                     wait_ids)],
                (gb.upload_table,)))
        if gb.backfill_start_date:
            dags += self.guarded(gb, lambda: dag(
                pm.GROUP_BY_BACKFILL, None,
                [*waits, PlannedTask(pm.GROUP_BY_BACKFILL_TASK,
                                     self.spark(GroupByBackfill, gb, "group_bys", "backfill"), wait_ids)],
                (gb.output_table,)))
        if gb.streaming:
            # Only the streaming job reads the online settings: a bad one costs this DAG alone.
            dags += self.guarded(gb, lambda: dataclasses.replace(
                dag(pm.GROUP_BY_STREAMING, STREAMING_KEEPER_SCHEDULE,
                    [PlannedTask(pm.GROUP_BY_STREAMING_TASK,
                                 self.spark(GroupByStreaming, gb, "group_bys", "streaming"))],
                    (), reads=()),
                takes_range=False))
        return dags

    # -- broken files --

    def config_errors(self, errors: list[ConfigError]) -> PlannedDag:
        """Broken configs, visible in the UI: one failing task per bad file."""
        by_file: dict[str, list[ConfigError]] = {}
        for e in errors:
            by_file.setdefault(e.path, []).append(e)
        tasks, seen = [], set()
        for path, errs in by_file.items():
            tid = base = safe_task_id(path)[:200] or "config"
            n = 1
            while tid in seen:
                n += 1
                tid = f"{base}_{n}"
            seen.add(tid)
            tasks.append(PlannedTask(tid, ReportConfigErrors(path, tuple(errs), self._maintainers_of(path))))
        default = self.repo.teams.get("default")
        return PlannedDag(
            dag_id=CONFIG_ERRORS_DAG_ID, kind=pm.CONFIG_ERRORS, team="chronon", schedule=None, source=TEAMS_JSON,
            tasks=tuple(tasks), reads=(), writes=(), owners=default.maintainer_emails if default else (),
            tags=("chronon", "config-errors"), inputs=None, takes_range=False)

    def _maintainers_of(self, path: str) -> tuple[str, ...]:
        """The team owning ``production/<kind>/<team>/...``, else teams.json's default maintainers."""
        parts = path.split("/")
        team = self.repo.teams.get(parts[2]) if len(parts) > 2 and parts[2] != "default" else None
        team = team or self.repo.teams.get("default")
        return team.maintainer_emails if team else ()

    # -- everything --

    def plan(self) -> Plan:
        repo = self.repo
        dags: list[PlannedDag] = []
        by_team: dict[str, list[JoinConf]] = {}
        for join in sorted(repo.joins.values(), key=lambda j: j.name):
            if join.has_model_transforms:
                planned = self.guarded(join, lambda: self.join_backfill(join))
                dags.extend(planned)
                if planned:
                    by_team.setdefault(join.team, []).append(join)
        for team in sorted(by_team):
            dags.append(self.metadata_upload(team, by_team[team]))
        for gb in sorted(repo.group_bys.values(), key=lambda g: g.name):
            if gb.join_sources:  # the first chained source drives the GroupBy's DAGs
                dags.extend(self.group_by(gb, repo.joins[gb.join_sources[0].join.name]))
        errors = sorted(self.errors, key=lambda e: (e.path, e.field))
        if errors:
            dags.append(self.config_errors(errors))
        for message in self.deployment.warnings():
            w = ConfigError("[chronon]", "spark_conn_id", message)
            self.warnings.setdefault((w.path, w.field, w.message), w)
        warnings = sorted(self.warnings.values(), key=lambda e: (e.path, e.field, e.message))
        return Plan(dags=tuple(dags), errors=tuple(errors), warnings=tuple(warnings))


def _join_reads(join: JoinConf) -> tuple[str, ...]:
    tables = _tables(join.metadata.dependencies)
    tables.append(join.left.table)
    for part in join.join_parts:
        tables.extend(s.table for s in part.group_by.sources if s.table)
    return tuple(dict.fromkeys(t for t in tables if t))


def build_plan(repo: Repo, deployment: Deployment | None = None) -> Plan:
    """Every DAG for ``repo`` in ``deployment`` (default: a local-engine deployment with no Spark
    connection, for tools that only look at the DAG structure)."""
    return Planner(repo, deployment or Deployment()).plan()
