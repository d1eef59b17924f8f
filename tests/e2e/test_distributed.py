"""End to end on the distributed topology (chronon_demo/distributed.py), one stack for the module:
PostgreSQL, Redis, CeleryExecutor with one worker per queue (``default`` and the risk team's
``chronon_risk``), a Spark standalone master with two workers, api-server / scheduler /
dag-processor / triggerer as separate processes, the reference model backend.

The stack is started with short heartbeat, task-heartbeat and orphan timeouts and task retry
delays capped at a few seconds (``fast_recovery``), so recovery from a killed process takes
seconds here instead of Airflow's production minutes.

1. a join on the team queue and its asset-triggered GroupBy upload complete; every task ran on
   that queue's worker (TI.queue, TI.hostname and the worker's own log); the Spark jobs ran on the
   standalone cluster;
2. the Celery worker running the raw join is SIGKILLed with its whole tree mid-task: the task is
   retried on a new worker process and the run succeeds;
3. the scheduler is SIGKILLed mid-run and a new one started: the run succeeds;
4. a Spark worker (its JVM and its executor) is SIGKILLed while the raw join runs on it: Spark
   (or the task retry) recovers and the run succeeds.

After 2-4: exactly one batch job for the run's range on the reference backend, and every output
partition committed once. Whatever a test kills it restarts (a new process in ``stack.json``).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from chronon_airflow import naming
from chronon_airflow.partitions import ds_range
from chronon_demo.distributed import DistributedConfig, DistributedStack, spark_master_url
from chronon_demo.run import (
    DATA_START,
    Follower,
    ScheduledRunCanceller,
    join_tables,
    start_stack,
    wait_for_asset_triggered_run,
)
from tests.support.distributed import (
    admin_job_total,
    assert_output_matches_raw,
    assert_partitions_written_once,
    backend_jobs,
    non_loopback_listeners,
    spark_executor_log,
    spark_worker_executors,
    task_log,
    wait_until,
    workloads,
)
from tests.support.paths import ARTIFACTS, CONFIGS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

TEAM_JOIN = "risk.txn_fraud.v1"  # team risk: airflow_queue chronon_risk (configs/teams.json)
TEAM_QUEUE = "chronon_risk"
DEFAULT_JOIN = "search.query_relevance.v1"  # team search: Airflow's default queue
DEFAULT_UPLOAD = "chronon.metadata_upload.search"
TEAM_START, TEAM_END = "2024-04-20", "2024-04-21"
# One day each, none overlapping: each run's batch job and partitions are its own.
WORKER_KILL_DS, SCHEDULER_KILL_DS, SPARK_KILL_DS = "2024-04-19", "2024-04-18", "2024-04-17"


def _skip_without_system_deps() -> None:
    from chronon_demo.distributed import PG_BIN

    if not (PG_BIN / "postgres").exists():
        pytest.skip(f"PostgreSQL 15 is not installed at {PG_BIN}")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    if shutil.which("java") is None:
        pytest.skip("no java for the Spark cluster")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    _skip_without_system_deps()
    from chronon_local_engine import sample_data

    root = tmp_path_factory.mktemp("distributed")
    config = DistributedConfig(workspace=root / "workspace", repo_path=CONFIGS, enable_backend_admin=True,
                               fast_recovery=True, retry_delay_cap=5, sensor_poke_interval=3,
                               batch_job_poll_interval=3)
    t0 = time.monotonic()
    sample_data.generate(DistributedStack(config).warehouse, DATA_START, TEAM_END)
    team, default = join_tables(CONFIGS, TEAM_JOIN), join_tables(CONFIGS, DEFAULT_JOIN)
    stack = None
    try:
        stack, client = start_stack(config, [team.dag_id, default.dag_id, DEFAULT_UPLOAD, *team.group_by_dag_ids],
                                    log=print)
        print(f"distributed stack ready in {time.monotonic() - t0:.0f}s: {stack.ui_url}")
        for dag_id in (team.dag_id, default.dag_id, DEFAULT_UPLOAD, *team.group_by_dag_ids):
            client.set_paused(dag_id, False)
        yield {"stack": stack, "client": client, "team": team, "default": default,
               "cancel": ScheduledRunCanceller(client, [team.dag_id, default.dag_id])}
    finally:
        if stack is not None:
            stack.stop()
            logs = ARTIFACTS / "distributed-stack-logs"
            shutil.rmtree(logs, ignore_errors=True)
            shutil.copytree(stack.logs_dir, logs, dirs_exist_ok=True)
            if (stack.airflow_home / "logs").is_dir():
                shutil.copytree(stack.airflow_home / "logs", logs / "tasks", dirs_exist_ok=True)
            if stack.state.get("pg_dir", "").startswith(("/tmp/chronon-pg-",)):
                shutil.rmtree(stack.state["pg_dir"], ignore_errors=True)


def _trigger(dist, dag_id: str, run_id: str, start: str, end: str) -> None:
    dist["client"].trigger(dag_id, {"start_ds": start, "end_ds": end}, run_id=run_id)


def _wait_run(dist, dag_id: str, run_id: str, timeout: float = 480) -> str:
    follower = Follower(dist["client"])
    follower.add(dag_id, run_id)
    return follower.wait([(dag_id, run_id)], timeout=timeout, tick=dist["cancel"])[(dag_id, run_id)]


def _tis(dist, dag_id: str, run_id: str) -> dict[str, dict]:
    return {t["task_id"]: t for t in dist["client"].task_instances(dag_id, run_id)}


def _wait_task_state(dist, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 240) -> dict:
    def check():
        dist["cancel"]()
        ti = _tis(dist, dag_id, run_id).get(task_id)
        return ti if ti and ti["state"] in states else None

    return wait_until(f"{dag_id}/{run_id}/{task_id} in {states}", check, timeout)


def _active_app(stack: DistributedStack, join: str) -> dict | None:
    """The running Spark application of ``join``'s raw join (by its app name: another DAG's job,
    e.g. an upload still running, is not it)."""
    apps = [a for a in stack.spark_master_status().get("activeapps", [])
            if "_joins_backfill_" in a.get("name", "") and a["name"].endswith(naming.sanitize(join))]
    return apps[0] if apps else None


def _assert_one_batch_job_and_partitions(dist, join: str, ds: str, jobs_before: int) -> None:
    stack, tables = dist["stack"], join_tables(CONFIGS, join)
    jobs = backend_jobs(stack, join, ds, ds)
    assert len(jobs) == 1, f"expected exactly one batch job for {join} {ds}..{ds}, got {jobs}"
    assert jobs[0]["status"] == "SUCCEEDED", jobs
    assert admin_job_total(stack) == jobs_before + 1  # and no other job was started meanwhile
    assert_partitions_written_once(stack.warehouse, tables.raw_table, [ds])
    assert_output_matches_raw(stack.warehouse, tables.raw_table, tables.output_table, [ds])


# -- 1. the team queue ---------------------------------------------------------------------------

def test_join_and_chained_upload_run_on_the_team_queue(dist):
    stack, client, team = dist["stack"], dist["client"], dist["team"]
    team_worker = next(n for n, w in stack.workers.items() if w["queue"] == TEAM_QUEUE)
    default_worker = next(n for n, w in stack.workers.items() if w["queue"] == "default")
    t0 = time.monotonic()
    _trigger(dist, team.dag_id, "team_queue", TEAM_START, TEAM_END)
    client.trigger(DEFAULT_UPLOAD, {}, run_id="default_queue")
    assert _wait_run(dist, team.dag_id, "team_queue") == "success"
    assert _wait_run(dist, DEFAULT_UPLOAD, "default_queue") == "success"

    (gb,) = team.group_by_dag_ids
    run = wait_for_asset_triggered_run(client, gb, "team_queue", timeout=180, tick=dist["cancel"])
    assert _wait_run(dist, gb, run["dag_run_id"]) == "success"
    print(f"team join + chained upload: {time.monotonic() - t0:.0f}s")

    team_host = stack.workers[team_worker]["hostname"]
    received = workloads(stack, team_worker)
    for dag_id, run_id in ((team.dag_id, "team_queue"), (gb, run["dag_run_id"])):
        tis = _tis(dist, dag_id, run_id)
        # stats_summary skips: the local engine has no stats-summary (the task says so).
        assert {t["state"] for k, t in tis.items() if k != "stats_summary"} == {"success"}, \
            {k: t["state"] for k, t in tis.items()}
        for task_id, ti in tis.items():
            assert ti["queue"] == TEAM_QUEUE, (dag_id, task_id, ti["queue"])
            assert ti["hostname"] == team_host, (dag_id, task_id, ti["hostname"])
            assert (dag_id, run_id, task_id, ti["try_number"]) in received, (dag_id, task_id)
    assert not {w for w in workloads(stack, default_worker) if w[0] in (team.dag_id, gb)}

    # The default queue's worker runs the tasks of a team without a queue of its own.
    for upload in _tis(dist, DEFAULT_UPLOAD, "default_queue").values():
        assert upload["queue"] == "default" and upload["hostname"] == stack.workers[default_worker]["hostname"]
        assert (DEFAULT_UPLOAD, "default_queue", upload["task_id"], 1) in workloads(stack, default_worker)

    # Both Spark jobs ran on the standalone cluster, through the chronon_spark connection.
    for dag_id, run_id, task_id in ((team.dag_id, "team_queue", "raw_join"),
                                    (gb, run["dag_run_id"], "group_by_upload")):
        log = task_log(stack, dag_id, run_id, task_id, 1)
        assert f"--master {spark_master_url(stack.state)}" in log, (dag_id, task_id)
        assert "Connected to Spark cluster with app ID" in log, (dag_id, task_id)
        # The task's "Spark application" link: the master UI's page of that application.
        from urllib.parse import quote

        xcom = client.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
                                     f"{task_id}/xcomEntries/spark_application_url").json()["value"]
        ui = stack.state["ports"]["spark-master-ui"]
        assert str(xcom).strip('"').startswith(f"http://127.0.0.1:{ui}/app/?appId=app-"), xcom
    completed = stack.spark_master_status().get("completedapps", [])
    assert len(completed) >= 2, completed
    days = ds_range(TEAM_START, TEAM_END)
    assert_partitions_written_once(stack.warehouse, team.raw_table, days)
    assert_output_matches_raw(stack.warehouse, team.raw_table, team.output_table, days)
    assert len(backend_jobs(stack, TEAM_JOIN, TEAM_START, TEAM_END)) == 1


# -- 2. a Celery worker lost mid-task ---------------------------------------------------------------

def test_celery_worker_killed_mid_task_is_retried_and_the_run_succeeds(dist):
    stack, join = dist["stack"], dist["default"]
    jobs_before = admin_job_total(stack)
    t0 = time.monotonic()
    _trigger(dist, join.dag_id, "worker_kill", WORKER_KILL_DS, WORKER_KILL_DS)
    ti = _wait_task_state(dist, join.dag_id, "worker_kill", "raw_join", {"running"})
    wait_until("the raw join's Spark application", lambda: _active_app(stack, DEFAULT_JOIN), 120)
    worker = stack.worker_for_hostname(ti["hostname"])
    assert worker, f"raw_join runs on no known worker: hostname {ti['hostname']!r}"
    killed = stack.kill(worker)  # the worker, its pool, the task process and its spark-submit
    print(f"SIGKILLed {worker} mid raw_join after {time.monotonic() - t0:.0f}s: pids {killed}")
    assert len(killed) >= 3
    old_pid = stack.record(worker)["pid"]
    stack.restart(worker)
    assert stack.record(worker)["pid"] != old_pid
    stack.wait_worker_ready(worker)

    assert _wait_run(dist, join.dag_id, "worker_kill") == "success"
    print(f"run with a killed worker succeeded in {time.monotonic() - t0:.0f}s")
    tis = _tis(dist, join.dag_id, "worker_kill")
    assert tis["raw_join"]["try_number"] == 2, tis["raw_join"]  # the first try died with its worker
    assert stack.worker_for_hostname(tis["raw_join"]["hostname"]) == worker
    _assert_one_batch_job_and_partitions(dist, DEFAULT_JOIN, WORKER_KILL_DS, jobs_before)


# -- 3. the scheduler lost mid-run ----------------------------------------------------------------

def test_scheduler_killed_mid_run_is_replaced_and_the_run_succeeds(dist):
    stack, join = dist["stack"], dist["default"]
    jobs_before = admin_job_total(stack)
    t0 = time.monotonic()
    _trigger(dist, join.dag_id, "scheduler_kill", SCHEDULER_KILL_DS, SCHEDULER_KILL_DS)
    _wait_task_state(dist, join.dag_id, "scheduler_kill", "raw_join", {"running"})
    killed = stack.kill("scheduler")
    print(f"SIGKILLed the scheduler mid raw_join after {time.monotonic() - t0:.0f}s: pids {killed}")
    assert killed
    time.sleep(5)  # the run goes on without a scheduler: the worker keeps running the raw join
    stack.restart("scheduler")

    assert _wait_run(dist, join.dag_id, "scheduler_kill") == "success"
    print(f"run with a killed scheduler succeeded in {time.monotonic() - t0:.0f}s")
    tis = _tis(dist, join.dag_id, "scheduler_kill")
    print({k: (t["state"], t["try_number"]) for k, t in tis.items()})
    assert {t["state"] for k, t in tis.items() if k != "stats_summary"} == {"success"}
    _assert_one_batch_job_and_partitions(dist, DEFAULT_JOIN, SCHEDULER_KILL_DS, jobs_before)


# -- 4. a Spark worker lost during the raw join -----------------------------------------------------

def test_spark_worker_lost_during_the_raw_join_is_recovered(dist):
    stack, join = dist["stack"], dist["default"]
    jobs_before = admin_job_total(stack)
    t0 = time.monotonic()
    _trigger(dist, join.dag_id, "spark_worker_kill", SPARK_KILL_DS, SPARK_KILL_DS)
    _wait_task_state(dist, join.dag_id, "spark_worker_kill", "raw_join", {"running"})
    app = wait_until("the raw join's Spark application", lambda: _active_app(stack, DEFAULT_JOIN), 120)
    workers = [n for n in (r["name"] for r in stack.state["processes"]) if n.startswith("spark-worker-")]

    def executor_running_a_task():
        # A worker whose executor of this app has been given a task of the join: killing it then
        # loses work the driver has to re-run. (The executor's own log says so; the driver's does
        # not, the local engine turns its logging down to WARN once the session is up.)
        for name in workers:
            for ex in spark_worker_executors(stack, name):
                if ex.get("appid") == app["id"] and \
                        "Got assigned task" in spark_executor_log(stack, name, app["id"], ex.get("id")):
                    return name
        return None

    victim = wait_until("an executor of the raw join running a task", executor_running_a_task, 120, interval=0.5)
    assert _tis(dist, join.dag_id, "spark_worker_kill")["raw_join"]["state"] == "running"
    # Everything listens on loopback only, the Spark driver and executors of this job included.
    assert non_loopback_listeners(stack) == []
    killed = stack.kill(victim)  # the worker JVM and its executor JVM: a lost machine
    print(f"SIGKILLed {victim} (app {app['id']}) after {time.monotonic() - t0:.0f}s: pids {killed}")
    still = _active_app(stack, DEFAULT_JOIN)
    # Not a recovery failure but a test that came too late: say so rather than fail further down.
    assert still is not None and still["id"] == app["id"], \
        f"the join's Spark application {app['id']} was no longer running when {victim} was killed (now: {still})"
    assert len(killed) >= 2
    time.sleep(5)
    stack.restart(victim)
    stack.wait_spark_workers()

    assert _wait_run(dist, join.dag_id, "spark_worker_kill") == "success"
    print(f"run with a lost Spark worker succeeded in {time.monotonic() - t0:.0f}s")
    raw = _tis(dist, join.dag_id, "spark_worker_kill")["raw_join"]
    log = task_log(stack, join.dag_id, "spark_worker_kill", "raw_join", 1)
    recovered_by_spark = raw["try_number"] == 1
    how = "Spark (lost tasks re-run on the other executor)" if recovered_by_spark else "the task retry"
    print(f"recovered by {how}")
    if recovered_by_spark:
        executor_lines = "\n".join(line[-300:] for line in log.splitlines() if "xecutor" in line)
        assert "Lost executor" in log, f"Spark did not notice the lost executor:\n{executor_lines}"
    _assert_one_batch_job_and_partitions(dist, DEFAULT_JOIN, SPARK_KILL_DS, jobs_before)


def test_the_stack_stops_cleanly_with_the_replacements(dist):
    """Every killed process was replaced by a new one recorded in stack.json, and all are alive."""
    stack = dist["stack"]
    retired = {r["name"] for r in stack.state.get("retired", [])}
    assert {"scheduler", "spark-worker-1", "spark-worker-2"} & retired and any(n.startswith("worker-") for n in retired)
    on_disk = DistributedStack.read_state(stack.workspace)
    assert [r["pid"] for r in on_disk["processes"]] == [r["pid"] for r in stack.state["processes"]]
    for record in stack.state["processes"]:
        assert DistributedStack._alive(record), record["name"]
    assert (Path(stack.state_path).stat().st_mode & 0o777) == 0o600
