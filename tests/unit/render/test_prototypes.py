"""Tasks built as copies of one constructed operator per kind (render/prototypes.py) are the
operators the constructor builds: attribute by attribute, as the dag-processor serializes them, and
owning their own containers."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.paths import CONFIGS, CORPUS, REFERENCE


def _both(repo):
    """The repo's DAGs rendered with copies, constructed, and how many tasks were copies."""
    from chronon_airflow.deployment import Deployment
    from chronon_airflow.plan import load_plan
    from chronon_airflow.render.dags import _Renderer, render

    loaded, plan = load_plan(repo, Deployment())
    renderer = _Renderer(plan, str(loaded.root), Deployment())
    copied = {p.dag_id: renderer.dag(p) for p in plan.dags}
    constructed = render(plan, loaded.root, Deployment(), prototypes=False)
    assert renderer.prototypes is not None
    return copied, constructed, renderer.prototypes.copies


def _plain(value: Any) -> Any:
    """An attribute value with the objects a task only refers to named (its DAG, task group, skip
    hook, failure notifiers are other objects in each render)."""
    from airflow.sdk import DAG
    from airflow.sdk.definitions.taskgroup import TaskGroup

    from chronon_airflow.notifications.failure import ChrononFailureNotifier
    from chronon_airflow.render.dags import SkipTask

    if isinstance(value, DAG):
        return ("dag", value.dag_id)
    if isinstance(value, TaskGroup):
        return ("task group", value.dag.dag_id if value.dag else None, value.group_id)
    if isinstance(value, SkipTask):
        return ("skip", value.reason)
    if isinstance(value, ChrononFailureNotifier):
        return ("notifier", _plain(vars(value)))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("repo", [CONFIGS, CORPUS, REFERENCE], ids=["configs", "corpus", "reference"])
def test_a_copied_task_is_the_constructed_task(repo):
    from airflow.serialization.serialized_objects import DagSerialization

    copied, constructed, copies = _both(repo)
    assert copied.keys() == constructed.keys()
    kinds, tasks = set(), 0
    for dag_id, dag in copied.items():
        other = constructed[dag_id]
        assert dag.task_dict.keys() == other.task_dict.keys()
        assert dag.task_group.children.keys() == other.task_group.children.keys()
        for task_id, task in dag.task_dict.items():
            theirs = other.task_dict[task_id]
            assert type(task) is type(theirs)
            assert task.dag is dag and task.task_group is dag.task_group
            assert _plain(vars(task)) == _plain(vars(theirs)), (dag_id, task_id)
            kinds.add(type(task).__name__)
            tasks += 1
        # And as the dag-processor stores them.
        assert DagSerialization.to_dict(dag) == DagSerialization.to_dict(other), dag_id
    assert tasks >= 40
    # Most were copies (the others: tasks with a skip hook, and the kinds that are always constructed).
    assert copies >= tasks // 2, (copies, tasks)
    if repo is CORPUS:  # every kind the renderer copies was compared
        assert {"ChrononPartitionSensor", "ChrononSparkSubmitOperator", "RegisterModelOperator",
                "RegisterModelTransformOperator", "ModelBatchInferenceOperator", "ChrononRangeCheckOperator"} <= kinds


def test_copies_own_their_containers():
    import datetime as dt

    from airflow.sdk import DAG, Asset

    from chronon_airflow.render.prototypes import Prototypes
    from chronon_airflow.sensors.partition import ChrononPartitionSensor

    protos = Prototypes()
    dag = DAG("d", schedule=None, start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
              default_args={"owner": "team"})
    shared = {"catalog": "local", "poke_interval": 60.0}
    a = protos.build(dag, ChrononPartitionSensor, "a", shared, {"table": "db.a", "subpartitions": {"hr": "00"}})
    b = protos.build(dag, ChrononPartitionSensor, "b", shared, {"table": "db.b"})
    a.downstream_task_ids.add("x")
    a.outlets.append(Asset("t"))
    a.on_failure_callback.append(print)
    a.executor_config["k"] = 1
    a.subpartitions["dt"] = "1"
    assert (b.downstream_task_ids, b.outlets, b.on_failure_callback, b.executor_config, b.subpartitions) == \
        (set(), [], [], {}, {})
    assert (a.table, b.table, a.owner, b.owner, a.start_date) == ("db.a", "db.b", "team", "team", dag.start_date)
    assert dag.task_dict == {"a": a, "b": b}
    # The class's own checks run for every copy: a bad table fails the build, a repeated id too.
    with pytest.raises(ValueError):
        protos.build(dag, ChrononPartitionSensor, "c", shared, {"table": "db.t; drop"})
    from airflow.sdk.exceptions import DuplicateTaskIdFound

    with pytest.raises(DuplicateTaskIdFound):
        protos.build(dag, ChrononPartitionSensor, "a", shared, {"table": "db.c"})


def test_the_spark_job_sets_what_the_providers_constructor_would():
    """``ChrononSparkSubmitOperator._set_task_args`` writes the provider's own attributes: each
    attribute the provider's ``__init__`` derives from the job's arguments has the same value."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from chronon_airflow.operators.chronon_spark import ChrononSparkSubmitOperator
    from chronon_airflow.spark.job import SparkJob

    job = SparkJob(application="/opt/chronon.jar", java_class="ai.chronon.spark.Driver",
                   application_args=["join", "--conf-path", "production/joins/t/j.v1"], conf={"spark.x": "1"},
                   env_vars={"E": "1"}, jars="a.jar", executor_cores=2, executor_memory="2g", driver_memory="1g",
                   num_executors=3, name="chronon_join_backfill_dev_t.j.v1", engine="jar", subcommand="join",
                   spark_submit_path="", conf_type="joins")
    given = {"application": job.application, "conf": dict(job.conf), "jars": job.jars, "java_class": job.java_class,
             "executor_cores": job.executor_cores, "executor_memory": job.executor_memory,
             "driver_memory": job.driver_memory, "num_executors": job.num_executors, "name": job.name,
             "application_args": list(job.application_args), "env_vars": dict(job.env_vars)}
    bare = vars(SparkSubmitOperator(task_id="bare"))
    theirs = vars(SparkSubmitOperator(task_id="theirs", **given))
    derived = {k for k in theirs if k not in ("task_id", "_BaseOperator__init_kwargs") and theirs[k] != bare.get(k)}
    assert len(derived) == len(given)  # one attribute per argument
    ours = vars(ChrononSparkSubmitOperator(task_id="ours", job=job))
    assert {k: ours[k] for k in derived} == {k: theirs[k] for k in derived}
