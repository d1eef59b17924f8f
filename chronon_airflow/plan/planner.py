"""From a loaded repo and a deployment to the DAGs chronon-airflow generates. Pure: no Airflow
import, no I/O, no settings: ``build_plan(repo, deployment)`` depends on its arguments only.

Which DAGs exist follows upstream Chronon's Airflow helpers (``airflow/helpers.py``:
``should_schedule``, ``requires_streaming_task``, ``requires_log_flattening_task``,
``get_offline_schedule``) with this package's DAG ids (``chronon.<family>.<config name>``):

=====================================  ========================================  ==========================
upstream DAG                           here                                      when
=====================================  ========================================  ==========================
``chronon_join_<join>``                ``chronon.join_backfill.<join>``          every join (``@never``: manual)
``chronon_stats_compute``              ``stats_summary`` step of the join DAG    join with a schedule
(none: CHIP-9)                         model-transform steps of the join DAG     ``modelTransforms``
(none)                                 ``label_join`` step of the join DAG       ``labelPart``
``chronon_online_offline_comparison``  ``chronon.consistency.<join>``            ``customJson.check_consistency``
``chronon_log_flattening_<team>``      ``chronon.log_flattening.<join>``         ``samplePercent > 0``
``chronon_metadata_upload``            ``chronon.metadata_upload.<team>``        every team with a join
``chronon_group_by_batch_<team>``      ``chronon.group_by_upload.<gb>``          online GroupBy
                                       ``chronon.group_by_backfill.<gb>``        ``backfillStartDate``
``chronon_group_by_streaming_<team>``  ``chronon.group_by_streaming.<gb>``       online + topic or TEMPORAL
``chronon_staging_query_batch_<team>`` ``chronon.staging_query.<sq>``            every staging query
=====================================  ========================================  ==========================
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

from chronon_airflow.config.model import (
    ConfigError,
    Dependency,
    GroupByConf,
    JoinConf,
    MetaData,
    Repo,
    StagingQueryConf,
)
from chronon_airflow.deployment import Deployment
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.plan import model as pm
from chronon_airflow.plan.model import (
    CheckRange,
    ConsistencyMetrics,
    GroupByBackfill,
    GroupByStreaming,
    GroupByUpload,
    JoinStep,
    LabelJoin,
    LogFlattener,
    MetadataUpload,
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
    StagingQueryBackfill,
    StatsSummary,
    WaitForBatchInference,
    WaitForPartition,
)
from chronon_airflow.spark.env import env_sources, resolve_env
from chronon_airflow.spark.job import build_spark_job, job_warnings, local_skip_reason, spark_submit_argv

DAG_PREFIX = "chronon"
CONFIG_ERRORS_DAG_ID = "chronon.config_errors"
# The metadata-upload DAG re-registers every 20 minutes (CHIP-9 keeps backends in sync with configs).
METADATA_UPLOAD_SCHEDULE = "*/20 * * * *"
STREAMING_KEEPER_SCHEDULE = "*/20 * * * *"
# The config-errors DAG runs (and fails, e-mailing each broken file's maintainers once per change
# of its errors) every hour while the repo has broken files.
CONFIG_ERRORS_SCHEDULE = "@hourly"
# Upstream's consistency and log-flattening DAGs run daily whatever the join's schedule.
DAILY = "@daily"
_TASK_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_TABLE = re.compile(r"^[A-Za-z0-9_]{1,128}(\.[A-Za-z0-9_]{1,128})?$")
TEAMS_JSON = "teams.json"
# Chronon's table suffixes (api Extensions.scala): label, stats and logging outputs of a join.
LABELS_SUFFIX, LABELED_SUFFIX, STATS_SUFFIX = "_labels", "_labeled", "_daily_stats"
LOGGED_SUFFIX, CONSISTENCY_SUFFIX = "_logged", "_consistency"
# The raw-log partition upstream's log flattener waits for (it lands every day).
SCHEMA_PUBLISH_EVENT = (("name", "SCHEMA_PUBLISH_EVENT"),)


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


def partition_waits(deps: Iterable[Dependency], taken: Iterable[str] = ()) -> list[PlannedTask]:
    """One wait per distinct (table, partition column, sub-partitions, lag), in first-seen order.

    Two entries for the same partition (the compiler repeats a source's dependency per join part)
    become one wait whose window spans both (the earliest start to the latest end; an open side
    stays open). Task ids are the compiler's dependency names; distinct waits that share a name (or
    a name in ``taken``) get a numbered suffix so neither is lost.
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
    tasks, seen = [], set(taken)
    for name, partition in merged.values():
        tid = base = safe_task_id(name)
        n = 1
        while tid in seen:
            n += 1
            tid = f"{base}_{n}"
        seen.add(tid)
        tasks.append(PlannedTask(tid, WaitForPartition(partition), reads=(partition.table,)))
    return tasks


def _wait_on(table: str, name: str, subpartitions: tuple[tuple[str, str], ...] = ()) -> Dependency:
    """A dependency on today's partition of ``table`` (what upstream's helper adds by itself)."""
    return Dependency(name, f"{table}/ds={{{{ ds }}}}", table, "ds", subpartitions, 0, None, None)


def _tables(deps: Iterable[Dependency]) -> list[str]:
    return [d.table for d in deps]


def _ids(tasks: Iterable[PlannedTask]) -> tuple[str, ...]:
    return tuple(t.task_id for t in tasks)


def _waited_table(wait: PlannedTask) -> str:
    """The table a task of :func:`partition_waits` waits for."""
    return cast(WaitForPartition, wait.spec).partition.table


# -- the planner ----------------------------------------------------------------------------------


class Planner:
    def __init__(self, repo: Repo, deployment: Deployment):
        self.repo = repo
        self.deployment = deployment
        self.errors: list[ConfigError] = list(repo.errors)
        self.warnings: dict[tuple[str, str, str], ConfigError] = {}

    def warn(self, path: str, field: str, message: str) -> None:
        w = ConfigError(path, field, message)
        self.warnings.setdefault((w.path, w.field, w.message), w)

    # -- Spark jobs --

    def spark(self, spec_cls: type[SparkStep], conf, conf_type: str, mode: str, updates: tuple[str, ...] = (),
              conf_path: str | None = None) -> SparkStep:
        """The Spark step of ``conf`` in ``mode``; raises InvalidConfig for a value that must not
        reach a command line (the caller drops the DAG and records the error)."""
        d = self.deployment
        raw = conf.raw if hasattr(conf, "raw") else conf
        path = conf_path or str(Path(self.repo.root) / conf.path)
        # build_spark_job only reads the config: the loaded JSON itself, no defensive copy.
        job = build_spark_job(raw, path, mode, self.repo.teams_json, conf_type=conf_type, engine=d.engine, env=d.env,
                              chronon_jar=d.chronon_jar, chronon_version=d.chronon_version)
        sources = None
        meta = raw["metaData"]
        for field, message in job_warnings(job):
            if field.startswith("env "):
                sources = sources or env_sources(raw, self.repo.teams_json, meta["team"], mode, d.env)
                key = field[len("env "):]
                where = sources.get(key, "")
                at, field = (TEAMS_JSON, f"{where}.{key}") if not where.startswith("metaData") else \
                    (getattr(conf, "path", TEAMS_JSON), f"metaData.modeToEnvMap.{mode}.{key}")
            else:
                at = getattr(conf, "path", TEAMS_JSON)
            self.warn(at, field, message)
        return spec_cls(job=job, argv=tuple(spark_submit_argv(job, d.spark)), updates=updates)

    def step(self, task_id: str, spec: SparkStep, upstream: tuple[str, ...], reads: Iterable[str],
             writes: Iterable[str]) -> PlannedTask:
        return PlannedTask(task_id, spec, upstream, tuple(dict.fromkeys(reads)), tuple(dict.fromkeys(writes)),
                           skip_reason=local_skip_reason(spec.job))

    def guarded(self, conf, build: Callable[[], PlannedDag | None]) -> list[PlannedDag]:
        """``build()``'s DAG, or none and a config error when a value cannot be used."""
        try:
            dag = build()
        except InvalidConfig as e:
            self.errors.append(ConfigError(conf.path, e.field or "metaData", e.message))
            return []
        return [dag] if dag is not None else []

    def dag(self, kind: str, conf, owner: _Owner, tasks: list[PlannedTask], summary: str, *,
            schedule: str | None, inputs: tuple[str, ...], tags: Iterable[str] = (), **extra) -> PlannedDag:
        """A DAG of ``conf``; reads and writes are its tasks' (inputs first, in task order)."""
        writes = tuple(dict.fromkeys(t for task in tasks for t in task.writes))
        reads = tuple(dict.fromkeys(t for task in tasks for t in task.reads if t not in writes))
        if extra.get("takes_range", True):
            tasks = _range_checked(tasks)
        return PlannedDag(
            dag_id=dag_id(kind, conf.name), kind=kind, team=owner.team, schedule=schedule, source=conf.path,
            tasks=tuple(_skip_orphaned_waits(tasks)), reads=reads, writes=writes, conf_name=conf.name,
            start_date=extra.pop("start_date", owner.start_date), owners=owner.owners, queue=owner.queue,
            tags=(owner.team, "chronon", _FAMILY[kind], *tags), description=conf.metadata.description,
            summary=summary, inputs=inputs, **extra)

    # -- joins --

    def join_backfill(self, join: JoinConf) -> PlannedDag:
        owner = _owner(self.repo, join.metadata)
        waits = partition_waits(join.metadata.dependencies)
        tasks = list(waits)
        sources = (*_tables(join.metadata.dependencies), *_join_sources(join))
        if join.has_model_transforms:
            tasks += self._model_transform_steps(join, _ids(waits), sources)
            landed = pm.WAIT_FOR_BATCH_INFERENCE
            summary = (f"Chronon join {join.name}: the raw join in Spark, then its model transforms on backend "
                       f"{join.transform_backend} write {join.output_table}")
        else:
            step = self.spark(JoinStep, join, "joins", "backfill", updates=(join.output_table,))
            tasks.append(self.step(pm.JOIN, step, _ids(waits), sources, (join.output_table,)))
            landed = pm.JOIN
            summary = f"Chronon join {join.name}: writes {join.output_table}"
        if join.label_part is not None:
            # Label GroupBys join later on their own dependencies (the compiler lists the join's
            # own output among them: it is the step before).
            label_waits = [w for w in partition_waits(join.label_part.dependencies, taken=_ids(tasks))
                           if _waited_table(w) != join.output_table]
            tasks += label_waits
            step = self.spark(LabelJoin, join, "joins", "label-join")
            tasks.append(self.step(pm.LABEL_JOIN, step, (landed, *_ids(label_waits)),
                                   (join.output_table, *(_waited_table(w) for w in label_waits)),
                                   (join.output_table + LABELS_SUFFIX, join.output_table + LABELED_SUFFIX)))
        if _schedule(join.metadata) is not None:  # upstream computes stats of scheduled joins
            step = self.spark(StatsSummary, join, "joins", "stats-summary")
            tasks.append(self.step(pm.STATS_SUMMARY, step, (landed,), (join.output_table,),
                                   (join.output_table + STATS_SUFFIX,)))
        return self.dag(
            pm.JOIN_BACKFILL, join, owner, tasks, summary,
            schedule=_schedule(join.metadata), inputs=(join.path, TEAMS_JSON), tags=join.backends,
            start_date=owner.start_date or join.left.query.start_partition,
            models=tuple(ModelDoc(m.name, m.backend, tuple(sorted(m.backend_params.items()))) for m in join.models))

    def _model_transform_steps(self, join: JoinConf, wait_ids: tuple[str, ...], sources: Iterable[str]) \
            -> list[PlannedTask]:
        tasks = [self.step(pm.RAW_JOIN, self.spark(RawJoin, join, "joins", "backfill"), wait_ids, sources,
                           (join.pre_mt_table,))]
        # Registration needs no data: it runs beside the sensors and the raw join, so a model the
        # backend rejects fails the run before hours of Spark, and submission waits for both.
        thrift = join.thrift()
        backend = join.transform_backend
        assert backend is not None  # a join with model transforms has models, so a transform backend
        register_ids = []
        for model in join.models:
            tid = f"register_model.{safe_task_id(model.name)}"
            register_ids.append(tid)
            tasks.append(PlannedTask(tid, RegisterModel(model=model.thrift(), name=model.name, backend=model.backend)))
        tasks.append(PlannedTask(pm.REGISTER_MODEL_TRANSFORM, RegisterModelTransform(thrift, backend),
                                 tuple(register_ids)))
        # Submit and wait are one task: its retry submits again (a FAILED job is replaced).
        tasks.append(PlannedTask(pm.WAIT_FOR_BATCH_INFERENCE,
                                 WaitForBatchInference(thrift, backend, output_table=join.output_table),
                                 (pm.RAW_JOIN, pm.REGISTER_MODEL_TRANSFORM), reads=(join.pre_mt_table,),
                                 writes=(join.output_table,)))
        return tasks

    def consistency(self, join: JoinConf) -> PlannedDag:
        owner = _owner(self.repo, join.metadata)
        logged = join.output_table + LOGGED_SUFFIX
        waits = partition_waits([_wait_on(logged, "wait_for_flattened_log_table")])
        step = self.spark(ConsistencyMetrics, join, "joins", "consistency-metrics-compute")
        tasks = [*waits, self.step(pm.CONSISTENCY_METRICS, step, _ids(waits), (logged,),
                                   (join.output_table + CONSISTENCY_SUFFIX,))]
        return self.dag(pm.CONSISTENCY, join, owner, tasks,
                        f"Online/offline consistency of {join.name} from its flattened request log",
                        schedule=DAILY, inputs=(join.path, TEAMS_JSON))

    def log_flattening(self, join: JoinConf) -> PlannedDag | None:
        owner = _owner(self.repo, join.metadata)
        env = resolve_env(join.raw, self.repo.teams_json, join.team, "log-flattener", self.deployment.env)
        tables = {}
        for key in ("CHRONON_LOG_TABLE", "CHRONON_SCHEMA_TABLE"):
            value = env.get(key)
            if not value:
                # Upstream's helper fails on the whole repo here; one warning and no DAG is enough.
                self.warn(TEAMS_JSON, f"common_env.{key}",
                          f"log flattening of {join.name} (samplePercent {join.metadata.sample_percent:g}) needs "
                          f"{key}: no chronon.log_flattening DAG until teams.json sets it")
                return None
            if not _TABLE.fullmatch(value):
                raise InvalidConfig(f"env {key}", f"{value!r} is not a table ([namespace.]table of [A-Za-z0-9_])")
            tables[key] = value
        waits = partition_waits([
            _wait_on(tables["CHRONON_LOG_TABLE"], "wait_for_raw_log_table", SCHEMA_PUBLISH_EVENT),
            _wait_on(tables["CHRONON_SCHEMA_TABLE"], "wait_for_schema_table"),
        ])
        logged = join.output_table + LOGGED_SUFFIX
        step = self.spark(LogFlattener, join, "joins", "log-flattener", updates=(logged,))
        tasks = [*waits, self.step(pm.LOG_FLATTENER, step, _ids(waits), tables.values(), (logged,))]
        return self.dag(pm.LOG_FLATTENING, join, owner, tasks,
                        f"Flattens the logged requests of {join.name} into {logged}",
                        schedule=DAILY, inputs=(join.path, TEAMS_JSON))

    def metadata_upload(self, team: str, joins: list[JoinConf]) -> PlannedDag:
        """Chronon's metadata upload of every join of the team, and the CHIP-9 registration of
        those with model transforms."""
        t = self.repo.teams[team]
        transform_joins = [j for j in joins if j.has_model_transforms]
        backends = tuple(dict.fromkeys(b for j in transform_joins for b in j.backends))
        folder = str(Path(self.repo.root) / "production" / "joins" / team)
        # A team-level job: metadata-upload walks the team's folder of compiled joins.
        conf = {"metaData": {"name": f"{team}.joins", "team": team}}
        step = self.spark(MetadataUpload, conf, "joins", "metadata-upload", conf_path=folder)
        tasks = [self.step(pm.METADATA_UPLOAD_TASK, step, (), (), ())]
        if transform_joins:
            tasks.append(PlannedTask(pm.REGISTER_TEAM_MODEL_TRANSFORMS, RegisterTeamModelTransforms(
                tuple(j.path for j in transform_joins), tuple(j.name for j in transform_joins))))
        names = tuple(j.name for j in joins)
        return PlannedDag(
            dag_id=dag_id(pm.METADATA_UPLOAD, team),
            kind=pm.METADATA_UPLOAD,
            team=team,
            schedule=METADATA_UPLOAD_SCHEDULE,
            source=TEAMS_JSON,
            tasks=tuple(tasks),
            reads=(),
            writes=(),
            owners=t.maintainer_emails,
            queue=t.airflow_queue,
            start_date=t.dag_start_date,
            tags=(team, "chronon", _FAMILY[pm.METADATA_UPLOAD], *backends),
            summary=f"Team {team}: uploads the metadata of {_count(len(joins), 'join')}"
                    + (f" and re-registers {_count(len(transform_joins), 'model transform')}"
                       if transform_joins else ""),
            inputs=(*(j.path for j in joins), TEAMS_JSON),
            members=names,
            takes_range=False,
        )

    # -- GroupBys --

    def group_by(self, gb: GroupByConf) -> list[PlannedDag]:
        owner = _owner(self.repo, gb.metadata)
        parents = [s.join.name for s in gb.join_sources if s.join is not None]
        parent = self.repo.joins[parents[0]] if parents else None
        deps = list(gb.metadata.dependencies)
        if parent is not None and parent.output_table not in _tables(deps):
            # A chained GroupBy keeps its own dependencies; its parent's output is waited for in any case.
            deps.append(_wait_on(parent.output_table, f"wait_for_{parent.output_table}"))
        # A chained GroupBy runs when its parent join's output lands (the partition range comes
        # from the asset event); any other follows its schedule.
        schedule = f"asset:{parent.output_table}" if parent is not None else _schedule(gb.metadata)
        inputs = (gb.path, *((parent.path,) if parent else ()), TEAMS_JSON)
        reads = _tables(deps)

        def batch(kind: str, spec_cls: type[SparkStep], mode: str, task_id: str, table: str, what: str) -> PlannedDag:
            waits = partition_waits(deps)
            step = self.spark(spec_cls, gb, "group_bys", mode, updates=(table,))
            return self.dag(kind, gb, owner, [*waits, self.step(task_id, step, _ids(waits), reads, (table,))],
                            f"Chronon group-by-{mode} of {gb.name}: {what} {table}"
                            + (f", when {parent.name}'s output lands" if parent is not None else ""),
                            schedule=schedule,
                            inputs=inputs)

        dags: list[PlannedDag] = []
        if gb.metadata.online:
            dags += self.guarded(gb, lambda: batch(pm.GROUP_BY_UPLOAD, GroupByUpload, "upload",
                                                   pm.GROUP_BY_UPLOAD_TASK, gb.upload_table,
                                                   "writes the serving snapshot to"))
        if gb.backfill_start_date:
            dags += self.guarded(gb, lambda: batch(pm.GROUP_BY_BACKFILL, GroupByBackfill, "backfill",
                                                   pm.GROUP_BY_BACKFILL_TASK, gb.output_table,
                                                   "writes daily values to"))
        if gb.streaming:
            # Only the streaming job reads the online settings: a bad one costs this DAG alone.
            dags += self.guarded(gb, lambda: self.dag(
                pm.GROUP_BY_STREAMING, gb, owner,
                [self.step(pm.GROUP_BY_STREAMING_TASK, self.spark(GroupByStreaming, gb, "group_bys", "streaming"),
                           (), (), ())],
                f"Chronon group-by-streaming of {gb.name}: keeps its streaming job running (checked every 20 "
                "minutes)", schedule=STREAMING_KEEPER_SCHEDULE, inputs=inputs, takes_range=False))
        return dags

    # -- staging queries --

    def staging_query(self, sq: StagingQueryConf) -> PlannedDag:
        owner = _owner(self.repo, sq.metadata)
        waits = partition_waits(sq.metadata.dependencies)
        step = self.spark(StagingQueryBackfill, sq, "staging_queries", "backfill", updates=(sq.output_table,))
        tasks = [*waits, self.step(pm.STAGING_QUERY_TASK, step, _ids(waits), _tables(sq.metadata.dependencies),
                                   (sq.output_table,))]
        return self.dag(pm.STAGING_QUERY, sq, owner, tasks,
                        f"Chronon staging query {sq.name}: writes {sq.output_table}",
                        schedule=_schedule(sq.metadata), inputs=(sq.path, TEAMS_JSON),
                        start_date=owner.start_date or sq.start_partition)

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
            dag_id=CONFIG_ERRORS_DAG_ID, kind=pm.CONFIG_ERRORS, team="chronon", schedule=CONFIG_ERRORS_SCHEDULE,
            source=TEAMS_JSON,
            tasks=tuple(tasks), reads=(), writes=(), owners=default.maintainer_emails if default else (),
            tags=("chronon", _FAMILY[pm.CONFIG_ERRORS]),
            summary=f"Broken Chronon configs: {_count(len(errors), 'error')} in {_count(len(by_file), 'file')}; "
                    "each file's task fails and e-mails its team's maintainers",
            inputs=None, takes_range=False)

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
            planned = self.guarded(join, partial(self.join_backfill, join))
            dags.extend(planned)
            if planned:
                by_team.setdefault(join.team, []).append(join)
            if join.metadata.check_consistency:
                dags.extend(self.guarded(join, partial(self.consistency, join)))
            if join.metadata.sample_percent > 0:
                dags.extend(self.guarded(join, partial(self.log_flattening, join)))
        for team in sorted(by_team):
            dags.extend(self.guarded(_TeamFile(team), partial(self.metadata_upload, team, by_team[team])))
        for gb in sorted(repo.group_bys.values(), key=lambda g: g.name):
            dags.extend(self.group_by(gb))
        for sq in sorted(repo.staging_queries.values(), key=lambda s: s.name):
            dags.extend(self.guarded(sq, partial(self.staging_query, sq)))
        errors = sorted(self.errors, key=lambda e: (e.path, e.field))
        if errors:
            dags.append(self.config_errors(errors))
        for message in self.deployment.warnings():
            self.warn("[chronon]", "spark_conn_id", message)
        warnings = sorted(self.warnings.values(), key=lambda e: (e.path, e.field, e.message))
        return Plan(dags=tuple(dags), errors=tuple(errors), warnings=tuple(warnings))


@dataclass(frozen=True)
class _TeamFile:
    """Where a team DAG's problems are reported."""

    team: str
    path: str = TEAMS_JSON


# The family tag of each DAG kind (tags: team, "chronon", family, backends).
_FAMILY = {
    pm.JOIN_BACKFILL: "join", pm.METADATA_UPLOAD: "metadata_upload", pm.GROUP_BY_UPLOAD: "group_by",
    pm.GROUP_BY_BACKFILL: "group_by", pm.GROUP_BY_STREAMING: "group_by", pm.STAGING_QUERY: "staging_query",
    pm.CONSISTENCY: "consistency", pm.LOG_FLATTENING: "log_flattening", pm.CONFIG_ERRORS: "config_errors",
}


def _range_checked(tasks: list[PlannedTask]) -> list[PlannedTask]:
    """``tasks`` after a ``check_range`` task that every root task waits for: a bad range fails
    that one task, before anything reaches a backend or Spark."""
    taken = {t.task_id for t in tasks}
    tid, n = pm.CHECK_RANGE, 1
    while tid in taken:
        n += 1
        tid = f"{pm.CHECK_RANGE}_{n}"
    check = PlannedTask(tid, CheckRange())
    return [check, *(t if t.upstream else dataclasses.replace(t, upstream=(tid,)) for t in tasks)]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _skip_orphaned_waits(tasks: list[PlannedTask]) -> list[PlannedTask]:
    """A wait whose every downstream step skips in this deployment skips too, with their reason:
    it would otherwise wait for a table nothing in this deployment writes."""
    downstream: dict[str, list[PlannedTask]] = {}
    for t in tasks:
        for up in t.upstream:
            downstream.setdefault(up, []).append(t)
    out = []
    for t in tasks:
        below = downstream.get(t.task_id, [])
        if t.kind == pm.WAIT_FOR_PARTITION and below and all(b.skip_reason for b in below):
            t = dataclasses.replace(t, skip_reason=below[0].skip_reason)
        out.append(t)
    return out


def _join_sources(join: JoinConf) -> list[str]:
    tables = [join.left.table]
    for part in join.join_parts:
        tables.extend(s.table for s in part.group_by.sources if s.table)
    return [t for t in tables if t]


def build_plan(repo: Repo, deployment: Deployment | None = None) -> Plan:
    """Every DAG for ``repo`` in ``deployment`` (default: a local-engine deployment with no Spark
    connection, for tools that only look at the DAG structure)."""
    return Planner(repo, deployment or Deployment()).plan()


__all__ = ["CONFIG_ERRORS_DAG_ID", "Planner", "build_plan", "dag_id", "partition_waits", "safe_task_id"]
