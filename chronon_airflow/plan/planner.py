"""From a loaded repo to the DAGs chronon-airflow generates. Pure: no Airflow import, no I/O."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from chronon_airflow.config.model import ConfigError, GroupByConf, JoinConf, MetaData, Repo, Team
from chronon_airflow.spark.job import LOCAL_CONNECTION, ConfigValueError, SparkConnection, build_spark_job, spark_submit_argv
from chronon_airflow.plan.model import (
    GROUP_BY_BACKFILL,
    GROUP_BY_BACKFILL_TASK,
    GROUP_BY_STREAMING,
    GROUP_BY_STREAMING_TASK,
    GROUP_BY_UPLOAD,
    GROUP_BY_UPLOAD_TASK,
    JOIN_BACKFILL,
    METADATA_UPLOAD,
    RAW_JOIN,
    REGISTER_MODEL,
    REGISTER_MODEL_TRANSFORM,
    REGISTER_TEAM_MODEL_TRANSFORMS,
    SUBMIT_BATCH_INFERENCE,
    WAIT_FOR_BATCH_INFERENCE,
    WAIT_FOR_PARTITION,
    Plan,
    PlannedDag,
    PlannedTask,
)

DAG_PREFIX = "chronon"
# The metadata-upload DAG re-registers every 20 minutes (CHIP-9 keeps backends in sync with configs).
METADATA_UPLOAD_SCHEDULE = "*/20 * * * *"
STREAMING_KEEPER_SCHEDULE = "*/20 * * * *"
_TASK_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def dag_id(kind: str, name: str) -> str:
    return f"{DAG_PREFIX}.{kind}.{name}"


def safe_task_id(text: str) -> str:
    return _TASK_ID_UNSAFE.sub("_", text)


def _schedule(meta: MetaData) -> str | None:
    return None if meta.offline_schedule == "@never" else meta.offline_schedule


def _team_facts(repo: Repo, meta: MetaData) -> dict:
    team: Team = repo.teams[meta.team]
    owners = tuple(dict.fromkeys(team.maintainer_emails + meta.owners()))
    return {"team": meta.team, "owners": owners, "queue": team.airflow_queue, "start_date": team.dag_start_date}


def _wait_tasks(deps: list[tuple[str, str, int]]) -> list[PlannedTask]:
    """(task name, table, lag) -> one partition sensor each, deduplicated by task id."""
    tasks: dict[str, PlannedTask] = {}
    for name, table, lag in deps:
        tid = safe_task_id(name)
        tasks.setdefault(tid, PlannedTask(tid, WAIT_FOR_PARTITION, (), {"table": table, "lag_days": lag}))
    return list(tasks.values())


def _join_reads(join: JoinConf) -> tuple[str, ...]:
    tables = [d.table for d in join.metadata.dependencies]
    tables.append(join.left.table)
    for part in join.join_parts:
        tables.extend(s.table for s in part.group_by.sources if s.table)
    return tuple(dict.fromkeys(t for t in tables if t))


def plan_join(repo: Repo, join: JoinConf) -> PlannedDag:
    waits = _wait_tasks([(d.name, d.table, d.lag_days) for d in join.metadata.dependencies])
    wait_ids = tuple(t.task_id for t in waits)
    tasks = list(waits)
    tasks.append(PlannedTask(RAW_JOIN, RAW_JOIN, wait_ids,
                             {"subcommand": "join", "mode": "backfill"}))
    # Registration needs no data: it runs beside the sensors and the raw join, so a model the
    # backend rejects fails the run before hours of Spark, and submission waits for both.
    register_ids = []
    for model in join.models:
        tid = f"register_model.{safe_task_id(model.name)}"
        register_ids.append(tid)
        tasks.append(PlannedTask(tid, REGISTER_MODEL, (), {"model": model.name}))
    tasks.append(PlannedTask(REGISTER_MODEL_TRANSFORM, REGISTER_MODEL_TRANSFORM, tuple(register_ids)))
    tasks.append(PlannedTask(SUBMIT_BATCH_INFERENCE, SUBMIT_BATCH_INFERENCE, (RAW_JOIN, REGISTER_MODEL_TRANSFORM)))
    tasks.append(PlannedTask(WAIT_FOR_BATCH_INFERENCE, WAIT_FOR_BATCH_INFERENCE, (SUBMIT_BATCH_INFERENCE,),
                             {"table": join.output_table}))
    facts = _team_facts(repo, join.metadata)
    return PlannedDag(
        dag_id=dag_id(JOIN_BACKFILL, join.name),
        kind=JOIN_BACKFILL,
        schedule=_schedule(join.metadata),
        source=join.path,
        tasks=tuple(tasks),
        reads=_join_reads(join),
        writes=(join.pre_mt_table, join.output_table),
        conf_name=join.name,
        tags=(join.team, "chronon", *join.backends),
        # Everything the render layer needs, so it never reads the loaded config: the compiled
        # join the backend operators send, and the models' facts for the DAG's documentation.
        details={"backends": list(join.backends),
                 "transform_backend": join.transform_backend, "description": join.metadata.description,
                 "model_docs": [{"name": m.name, "backend": m.backend, "params": dict(m.backend_params)}
                                for m in join.models],
                 "thrift": join.thrift()},
        start_date=facts["start_date"] or join.left.query.start_partition,
        **{k: facts[k] for k in ("team", "owners", "queue")},
    )


def plan_metadata_upload(repo: Repo, team: str, joins: list[JoinConf]) -> PlannedDag:
    t = repo.teams[team]
    backends = tuple(dict.fromkeys(b for j in joins for b in j.backends))
    return PlannedDag(
        dag_id=dag_id(METADATA_UPLOAD, team),
        kind=METADATA_UPLOAD,
        team=team,
        schedule=METADATA_UPLOAD_SCHEDULE,
        source="teams.json",
        tasks=(PlannedTask(REGISTER_TEAM_MODEL_TRANSFORMS, REGISTER_TEAM_MODEL_TRANSFORMS, (),
                           {"joins": [j.name for j in joins]}),),
        reads=(),
        writes=(),
        owners=t.maintainer_emails,
        queue=t.airflow_queue,
        start_date=t.dag_start_date,
        tags=(team, "chronon", *backends),
        details={"joins": [j.name for j in joins], "paths": [j.path for j in joins], "backends": list(backends)},
    )


def plan_group_by(repo: Repo, gb: GroupByConf, parent: JoinConf) -> list[PlannedDag]:
    facts = _team_facts(repo, gb.metadata)
    parent_table = parent.output_table
    wait = PlannedTask(safe_task_id(f"wait_for_{parent_table}"), WAIT_FOR_PARTITION, (),
                       {"table": parent_table, "lag_days": 0})
    common = dict(source=gb.path, conf_name=gb.name, reads=(parent_table,), start_date=facts["start_date"],
                  tags=(gb.metadata.team, "chronon", "group_by"),
                  details={"parent_join": parent.name},
                  **{k: facts[k] for k in ("team", "owners", "queue")})
    dags = []
    if gb.metadata.online:
        dags.append(PlannedDag(
            dag_id=dag_id(GROUP_BY_UPLOAD, gb.name), kind=GROUP_BY_UPLOAD,
            # The parent's output asset triggers it; the partition comes from the asset event.
            schedule=f"asset:{parent_table}",
            tasks=(wait, PlannedTask(GROUP_BY_UPLOAD_TASK, GROUP_BY_UPLOAD_TASK, (wait.task_id,),
                                     {"subcommand": "group-by-upload", "mode": "upload"})),
            writes=(gb.upload_table,), **common))
    if gb.backfill_start_date:
        dags.append(PlannedDag(
            dag_id=dag_id(GROUP_BY_BACKFILL, gb.name), kind=GROUP_BY_BACKFILL, schedule=None,
            tasks=(wait, PlannedTask(GROUP_BY_BACKFILL_TASK, GROUP_BY_BACKFILL_TASK, (wait.task_id,),
                                     {"subcommand": "group-by-backfill", "mode": "backfill"})),
            writes=(gb.output_table,), **common))
    if gb.streaming:
        dags.append(PlannedDag(
            dag_id=dag_id(GROUP_BY_STREAMING, gb.name), kind=GROUP_BY_STREAMING, schedule=STREAMING_KEEPER_SCHEDULE,
            tasks=(PlannedTask(GROUP_BY_STREAMING_TASK, GROUP_BY_STREAMING_TASK, (),
                               {"subcommand": "group-by-streaming", "mode": "streaming"}),),
            writes=(), **{**common, "reads": ()}))
    return dags


def _with_spark_jobs(repo: Repo, dag: PlannedDag, conf, connection: SparkConnection) -> PlannedDag:
    """Attach each Spark task's job and its full spark-submit argv (run dates as placeholders)."""
    tasks = []
    for t in dag.tasks:
        if "subcommand" in t.details:
            # build_spark_job only reads the config: the loaded JSON itself, no defensive copy.
            job = build_spark_job(conf.raw, str(Path(repo.root) / conf.path), t.details["mode"], repo.teams_json,
                                  conf_type="joins" if isinstance(conf, JoinConf) else "group_bys")
            t = dataclasses.replace(t, details={**t.details, "spark_job": job,
                                                "argv": spark_submit_argv(job, connection)})
        tasks.append(t)
    return dataclasses.replace(dag, tasks=tuple(tasks))


def build_plan(repo: Repo, spark_connection: SparkConnection | None = None) -> Plan:
    """Every DAG for ``repo``. ``spark_connection`` shapes the argv shown for Spark tasks (the
    render layer and the CLI pass the configured Airflow connection; default local mode)."""
    connection = spark_connection or LOCAL_CONNECTION
    errors = list(repo.errors)

    def spark(dags: list[PlannedDag], conf) -> list[PlannedDag]:
        try:
            return [_with_spark_jobs(repo, d, conf, connection) for d in dags]
        except ConfigValueError as e:
            # A value that must not reach a command line: this config gets no DAGs, the rest do.
            errors.append(ConfigError(conf.path, "metaData", str(e)))
            return []

    dags: list[PlannedDag] = []
    by_team: dict[str, list[JoinConf]] = {}
    for join in sorted(repo.joins.values(), key=lambda j: j.name):
        if join.has_model_transforms:
            planned = spark([plan_join(repo, join)], join)
            dags.extend(planned)
            if planned:
                by_team.setdefault(join.team, []).append(join)
    for team in sorted(by_team):
        dags.append(plan_metadata_upload(repo, team, by_team[team]))
    for gb in sorted(repo.group_bys.values(), key=lambda g: g.name):
        if gb.join_sources:  # the first chained source drives the GroupBy's DAGs
            dags.extend(spark(plan_group_by(repo, gb, repo.joins[gb.join_sources[0].join.name]), gb))
    errors.sort(key=lambda e: (e.path, e.field))
    return Plan(dags=tuple(dags), errors=tuple(errors))
