"""``make demo``: the main job end to end on real Airflow processes.

1. a fresh workspace (``.chronon/demo``) and the sample source tables;
2. the stack: reference model backend, SMTP sink, Airflow's components (see :mod:`.stack`), and
   the Chronon Spark pool;
3. through the REST API: unpause the join's DAG and its chained GroupBy upload DAG, trigger the
   join's backfill for a multi-day range, print task states as they change (with
   ``--fail-batch-job`` the backend fails the join's batch job: once, recovered by the task's own
   retry, or always, recovered by ``python -m chronon_demo recover``);
4. wait for the GroupBy upload run that the join's output asset event triggers;
5. beside it, the other families on the same range: a plain join feeding a chained GroupBy, and a
   staging query feeding a join (its sensors defer until the staging query's partitions land);
6. print the summary and the UI login, and leave the stack running (``make demo-stop``).
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronon_airflow.partitions import ds_range
from chronon_demo.client import AirflowClient
from chronon_demo.stack import Printer, Stack, StackConfig, _print

TERMINAL = {"success", "failed"}
DATA_START = "2024-03-15"  # the configs' sources start here; joins look back 30 days
DEMO_JOIN = "search.query_relevance.v1"
DEMO_START, DEMO_END = "2024-04-20", "2024-04-22"


def join_dag_id(join: str) -> str:
    from chronon_airflow.plan import dag_id
    from chronon_airflow.plan.model import JOIN_BACKFILL

    return dag_id(JOIN_BACKFILL, join)


@dataclass
class JoinTables:
    join: str
    dag_id: str
    sources: list[str]
    raw_table: str
    output_table: str
    group_by_dag_ids: list[str]  # chained GroupBy uploads scheduled on the output table's asset
    group_by_tables: list[str]


@dataclass
class Flow:
    """A DAG the demo triggers for the range, and the asset-triggered DAGs it feeds."""

    dag_id: str
    label: str
    writes: list[str]
    chained: list[str]  # asset-triggered DAG ids waiting for this DAG's output
    chained_writes: list[str]


def other_families(repo: Path, main_join: str) -> list[Flow]:
    """Besides the main model-transform join: every plain join that feeds a chained GroupBy, every
    staging query and every join reading a staging query's output (the plan says which)."""
    from chronon_airflow.deployment import Deployment
    from chronon_airflow.plan import load_plan
    from chronon_airflow.plan import model as pm

    loaded, plan = load_plan(repo, Deployment())
    by_asset: dict[str, list] = {}
    for d in plan.dags:
        if d.kind == pm.GROUP_BY_UPLOAD and (d.schedule or "").startswith("asset:"):
            by_asset.setdefault(d.schedule[len("asset:"):], []).append(d)
    sq_tables = {sq.output_table for sq in loaded.staging_queries.values()}
    flows = []
    for d in plan.dags:
        conf = loaded.joins.get(d.conf_name or "") if d.kind == pm.JOIN_BACKFILL else None
        feeds_group_by = conf is not None and conf.name != main_join and not conf.has_model_transforms \
            and conf.output_table in by_asset
        reads_staging = conf is not None and bool(set(d.reads) & sq_tables)
        if d.kind == pm.STAGING_QUERY or feeds_group_by or reads_staging:
            chained = by_asset.get(conf.output_table, []) if conf is not None else []
            flows.append(Flow(d.dag_id, d.conf_name or d.dag_id, list(d.writes), [c.dag_id for c in chained],
                              [t for c in chained for t in c.writes]))
    return flows


def join_tables(repo: Path, join: str) -> JoinTables:
    """What the demo reads and writes, from the plan of ``repo``."""
    from chronon_airflow.deployment import Deployment
    from chronon_airflow.plan import load_plan

    # Only tables and DAG ids are read: any deployment gives the same ones.
    loaded, plan = load_plan(repo, Deployment())
    conf = loaded.joins[join]
    dag = next(d for d in plan.dags if d.dag_id == join_dag_id(join))
    chained = [d for d in plan.dags if d.kind == "group_by_upload" and d.schedule == f"asset:{conf.output_table}"]
    return JoinTables(join=join, dag_id=dag.dag_id, sources=list(dag.reads), raw_table=conf.raw_join_table,
                      output_table=conf.output_table, group_by_dag_ids=[d.dag_id for d in chained],
                      group_by_tables=[t for d in chained for t in d.writes])


class Follower:
    """Prints the task state changes of a few DAG runs as they happen."""

    def __init__(self, client: AirflowClient, log: Printer = _print):
        self.client, self.log = client, log
        self.t0 = time.monotonic()
        self.runs: dict[tuple[str, str], str] = {}  # (dag_id, run_id) -> label
        self.task_states: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self.run_states: dict[tuple[str, str], str] = {}

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.t0:5.0f}s]"

    def add(self, dag_id: str, run_id: str, label: str | None = None) -> None:
        self.runs[(dag_id, run_id)] = label or dag_id

    def poll(self) -> dict[tuple[str, str], str]:
        for key, label in self.runs.items():
            dag_id, run_id = key
            run = self.client.dag_run(dag_id, run_id)
            for ti in sorted(self.client.task_instances(dag_id, run_id), key=lambda t: t.get("start_date") or "~"):
                state = (ti["state"], ti["try_number"])
                tkey = (dag_id, run_id, ti["task_id"])
                if self.task_states.get(tkey) != state and ti["state"] is not None:
                    tries = f" (try {ti['try_number']})" if (ti["try_number"] or 0) > 1 else ""
                    self.log(f"  {self.stamp()} {label}: {ti['task_id']} -> {ti['state']}{tries}")
                    self.task_states[tkey] = state
            if self.run_states.get(key) != run["state"]:
                self.log(f"  {self.stamp()} {label}: run {run_id} is {run['state']}")
                self.run_states[key] = run["state"]
        return dict(self.run_states)

    def wait(self, keys: list[tuple[str, str]], timeout: float, tick: Callable[[], None] | None = None,
             interval: float = 2.0) -> dict[tuple[str, str], str]:
        """Until every run in ``keys`` is success or failed; returns their states."""
        deadline = time.monotonic() + timeout
        while True:
            if tick:
                tick()
            states = self.poll()
            if all(states.get(k) in TERMINAL for k in keys):
                return {k: states[k] for k in keys}
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs not finished after {timeout:.0f}s: "
                                   f"{ {k: states.get(k) for k in keys} }")
            time.sleep(interval)


class ScheduledRunCanceller:
    """Unpausing a ``@daily`` join DAG makes the scheduler create the run of the latest interval
    (catchup is off): today's, for which the sample data has no partition, so its sensors would
    poke for hours. The demo marks such runs failed with a note saying why (deleting them is no
    use: with catchup off the scheduler creates the latest interval's run again).

    ``grace`` leaves a run alone for that many seconds after it was queued: the end-to-end tests
    let its landing deadline (seconds on their stack) pass first. A run cancelled earlier can end
    ``success`` (all its leaf tasks skipped), and a successful run's deadline is pruned unsent."""

    NOTE = "Cancelled by the demo: the sample data has no partitions for this interval."

    def __init__(self, client: AirflowClient, dag_ids: list[str], log: Printer = _print, grace: float = 0.0):
        self.client, self.dag_ids, self.log, self.grace = client, dag_ids, log, grace
        self.cancelled: list[str] = []

    def _too_young(self, run: dict[str, Any]) -> bool:
        queued = run.get("queued_at")
        if not self.grace or not queued:
            return False
        queued_at = dt.datetime.fromisoformat(str(queued).replace("Z", "+00:00"))
        return (dt.datetime.now(dt.timezone.utc) - queued_at).total_seconds() < self.grace

    def __call__(self) -> None:
        for dag_id in self.dag_ids:
            for run in self.client.dag_runs(dag_id, run_type="scheduled"):
                if run["state"] in TERMINAL or self._too_young(run):
                    continue
                self.client.set_dag_run_state(dag_id, run["dag_run_id"], "failed", note=self.NOTE)
                self.cancelled.append(run["dag_run_id"])
                self.log(f"  marked the scheduled run {run['dag_run_id']} of {dag_id} failed: the sample "
                         "data has no partitions for it")


def placement_table(client: AirflowClient, stack: Stack, runs: list[tuple[str, str]]) -> str:
    """Per task instance: its queue and the Celery worker that ran it (from TI.hostname: each
    worker of the distributed topology has its own loopback address)."""
    rows = [("dag / task", "queue", "worker (hostname)", "state")]
    for dag_id, run_id in runs:
        for ti in sorted(client.task_instances(dag_id, run_id), key=lambda t: t.get("start_date") or "~"):
            worker = stack.worker_for_hostname(ti.get("hostname")) if hasattr(stack, "worker_for_hostname") else None
            where = f"{worker} ({ti.get('hostname')})" if worker else (ti.get("hostname") or "-")
            rows.append((f"{dag_id.split('.', 2)[-1]} / {ti['task_id']}", ti.get("queue") or "-", where,
                         ti.get("state") or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows)


def find_asset_triggered_run(client: AirflowClient, dag_id: str, source_run_id: str) -> dict[str, Any] | None:
    """The asset-triggered run of ``dag_id`` consuming an event from the run ``source_run_id``."""
    for run in client.dag_runs(dag_id, run_type="asset_triggered"):
        events = client.upstream_asset_events(dag_id, run["dag_run_id"])
        if any(e.get("source_run_id") == source_run_id for e in events):
            return {**run, "asset_events": events}
    return None


def wait_for_asset_triggered_run(client: AirflowClient, dag_id: str, source_run_id: str, timeout: float,
                                 tick: Callable[[], None] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        if tick:
            tick()
        run = find_asset_triggered_run(client, dag_id, source_run_id)
        if run:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"no asset-triggered run of {dag_id} from {source_run_id} after {timeout:.0f}s")
        time.sleep(2.0)


BATCH_TASK = "wait_for_batch_inference"


def failure_report(stack: Stack, client: AirflowClient, dag_id: str, run_id: str) -> str:
    """The batch task's tries and the failure e-mail the team received (its "What to do")."""
    from chronon_demo.mail import read_messages

    tis = {t["task_id"]: t for t in client.task_instances(dag_id, run_id)}
    ti = tis.get(BATCH_TASK, {})
    lines = [f"  {BATCH_TASK}: {ti.get('state')} after {ti.get('try_number')} tries"]
    deadline = time.monotonic() + 60
    mails: list = []
    while time.monotonic() < deadline and not mails:
        mails = [m for m in read_messages(stack.mail_dir) if BATCH_TASK in m.subject and "failed" in m.subject]
        time.sleep(1)
    for m in mails[-1:]:
        lines.append(f"  e-mail to {m.to}: {m.subject}")
        text = m.body.split("What to do", 1)[-1].split("Links", 1)[0].strip("-\n ")
        lines.append("  What to do: " + " ".join(text.split()))
    return "\n".join(lines)


def recover(workspace: Path, log: Printer = _print, timeout: float = 600.0) -> int:
    """``python -m chronon_demo recover``: after ``--fail-batch-job always``, lift the injected
    failure, clear the failed batch task of the demo's run (it submits a new job: a FAILED job is
    never reused) and follow the run to its end."""
    import httpx

    state = Stack.running_state(workspace)
    if not state or "demo_run" not in state:
        log(f"no demo run to recover in {workspace}")
        return 1
    demo = state["demo_run"]
    backend = f"http://127.0.0.1:{state['ports']['backend']}"
    try:
        httpx.delete(f"{backend}/admin/faults", timeout=10).raise_for_status()
        log(f"-- lifted the injected failure ({backend}/admin/faults)")
    except httpx.HTTPError as e:
        log(f"-- no fault to lift ({e})")
    with AirflowClient(state["ui_url"], state["user"], state["password"]) as client:
        client.clear_task(demo["dag_id"], demo["run_id"], BATCH_TASK, downstream=True)
        log(f"-- cleared {BATCH_TASK} (and downstream) of {demo['dag_id']} run {demo['run_id']}")
        follower = Follower(client, log)
        follower.add(demo["dag_id"], demo["run_id"], demo["join"])
        final = follower.wait([(demo["dag_id"], demo["run_id"])], timeout=timeout)[(demo["dag_id"], demo["run_id"])]
        jobs = httpx.get(f"{backend}/admin/jobs", timeout=10).json()
    log(f"-- run {demo['run_id']} {final}; backend jobs by status: {jobs['byStatus']}")
    return 0 if final == "success" else 1


def make_stack(config: StackConfig, log: Printer = _print) -> Stack:
    """The local stack, or the distributed topology for a :class:`~.distributed.DistributedConfig`."""
    from chronon_demo.distributed import DistributedConfig, DistributedStack

    if isinstance(config, DistributedConfig):
        return DistributedStack(config, log)
    return Stack(config, log)


def queue_dag_ids(repo: Path, queues: list[str], busy: list[str]) -> dict[str, str]:
    """queue -> the metadata-upload DAG of a team on that queue (one light task: registrations)
    for every queue no DAG of ``busy`` uses, so the distributed demo gives every Celery worker
    something to run."""
    from chronon_airflow.config import load_repo
    from chronon_airflow.plan import build_plan

    dags = build_plan(load_repo(repo)).dags
    used = {d.queue or "default" for d in dags if d.dag_id in busy}
    out: dict[str, str] = {}
    for d in dags:
        if d.kind == "metadata_upload" and d.queue in queues and d.queue not in used | set(out):
            out[d.queue] = d.dag_id
    return out


def ensure_spark_pool(stack: Stack, client: AirflowClient) -> dict[str, Any]:
    """The Airflow pool every Chronon Spark step runs in (``[chronon] spark_pool``), created with
    ``[chronon] spark_pool_slots`` slots as the stack's processes read them: what
    ``airflow pools set <name> <slots> <description>`` does in a deployment."""
    from chronon_airflow import settings

    env = stack.airflow_env()
    name = env.get("AIRFLOW__CHRONON__SPARK_POOL", settings.DEFAULTS["spark_pool"])
    slots = int(env.get("AIRFLOW__CHRONON__SPARK_POOL_SLOTS", settings.DEFAULTS["spark_pool_slots"]))
    if not name:
        return {"name": "default_pool", "slots": "its"}
    return client.ensure_pool(name, slots, "Chronon Spark steps (chronon-airflow [chronon] spark_pool)")


def start_stack(config: StackConfig, dag_ids: list[str], log: Printer = _print,
                ready_timeout: float = 300.0) -> tuple[Stack, AirflowClient]:
    """Start the stack, wait until healthy, log in, wait until ``dag_ids`` are parsed.
    Stops what it started if any step fails."""
    stack = make_stack(config, log)
    stack.start()
    try:
        stack.wait_ready(ready_timeout)
        client = AirflowClient(stack.ui_url, stack.state["user"], stack.password)
        client.login()
        log(f"  logged in to the REST API as {stack.state['user']} (JWT from POST /auth/token)")
        pool = ensure_spark_pool(stack, client)
        log(f"  pool {pool['name']}: {pool['slots']} slots for the Chronon Spark steps")
        client.wait_for_dags(dag_ids, timeout=ready_timeout)
        log(f"  {len(client.dag_ids())} DAGs parsed")
        return stack, client
    except BaseException:
        log("  start failed: stopping what was started")
        stack.stop()
        raise


FAIL_ONCE, FAIL_ALWAYS = "once", "always"
# With --fail-batch-job the stack's tasks retry after this many seconds (not 5 minutes).
FAULT_RETRY_DELAY = 10


class BatchJobFault:
    """``--fail-batch-job``: the reference backend (started with its admin API) fails the batch jobs
    of ``join``. ``once``: the fault is lifted as soon as the first job has FAILED, so the task's own
    retry submits a new job and the run succeeds; ``always``: every job fails, the run fails and the
    team gets the failure e-mail with the recovery action (``python -m chronon_demo recover``)."""

    def __init__(self, backend_url: str, join: str, mode: str, log: Printer = _print):
        self.backend_url, self.join, self.mode, self.log = backend_url, join, mode, log
        self.lifted = False

    def inject(self) -> None:
        import httpx

        httpx.post(f"{self.backend_url}/admin/faults", json={"fail_jobs_for_joins": [self.join]},
                   timeout=10).raise_for_status()
        self.log(f"  injected a batch-job failure for {self.join} ({self.mode}) through the backend's admin API")

    def __call__(self) -> None:
        """A follower tick: in ``once`` mode, lift the fault once a job has FAILED."""
        import httpx

        if self.mode != FAIL_ONCE or self.lifted:
            return
        failed = httpx.get(f"{self.backend_url}/admin/jobs", timeout=10).json()["byStatus"].get("FAILED", 0)
        if failed:
            httpx.delete(f"{self.backend_url}/admin/faults", timeout=10).raise_for_status()
            self.lifted = True
            self.log(f"  the batch job of {self.join} FAILED; fault lifted: the task's own retry (in "
                     f"{FAULT_RETRY_DELAY}s) submits a new job")


def run_demo(workspace: Path, repo: Path, join: str, start: str, end: str, log: Printer = _print,
             distributed: bool = False, fail_batch_job: str | None = None) -> int:
    t_start = time.monotonic()
    tables = join_tables(repo, join)
    # The distributed demo keeps to the main job; the local one shows the other families too.
    flows = [] if distributed else other_families(repo, join)
    flow_dags = [f.dag_id for f in flows] + [c for f in flows for c in f.chained]
    running = Stack.running_state(workspace)
    if running:
        pids = ", ".join(str(p["pid"]) for p in running["processes"])
        log(f"A demo is already running ({running['ui_url']}, PIDs {pids}): stopping it first.")
        Stack.stop_state(running, log)

    log(f"== chronon-airflow demo{' (distributed topology)' if distributed else ''}: "
        f"{tables.dag_id} for {start}..{end}")
    if distributed:
        from chronon_demo.distributed import DistributedConfig, DistributedStack

        config: StackConfig = DistributedConfig(workspace=workspace, repo_path=repo)
    else:
        config = StackConfig(workspace=workspace, repo_path=repo)
    if fail_batch_job:
        config.enable_backend_admin = True
        config.retry_delay = FAULT_RETRY_DELAY
    stack = make_stack(config, log)
    stack.reset_workspace()

    from chronon_local_engine import sample_data

    log(f"-- sample source tables {DATA_START}..{end} in {stack.warehouse}")
    for table, rows in sample_data.generate(stack.warehouse, DATA_START, end).items():
        log(f"  {table}: {rows} rows")

    extra_dags: dict[str, str] = {}
    if distributed:
        from chronon_demo.topology import worker_queues

        log("-- starting the distributed topology (PostgreSQL, Redis, Spark standalone master + workers; "
            "api-server, scheduler, dag-processor, triggerer, one Celery worker per queue)")
        queues = worker_queues(repo)
        extra_dags = queue_dag_ids(repo, queues, [tables.dag_id, *tables.group_by_dag_ids])
        t0 = time.monotonic()
        stack, client = start_stack(config, [tables.dag_id, *tables.group_by_dag_ids, *extra_dags.values()], log)
        log(f"  stack ready in {time.monotonic() - t0:.0f}s")
        assert isinstance(stack, DistributedStack)  # make_stack's for a DistributedConfig
        for line in stack.describe():
            log(line)
    else:
        log("-- starting the stack (Airflow standalone: api-server, scheduler, dag-processor, triggerer; "
            "SQLite + LocalExecutor)")
        stack, client = start_stack(config, [tables.dag_id, *tables.group_by_dag_ids, *flow_dags], log)
    try:
        log("-- triggering through the REST API v2")
        extra_runs: list[tuple[str, str]] = []
        for queue, dag_id in extra_dags.items():
            extra_run = f"demo__{queue}__{time.strftime('%Y%m%dT%H%M%S')}"
            client.trigger(dag_id, {}, run_id=extra_run, note=f"make demo-distributed: work for queue {queue}")
            client.set_paused(dag_id, False)
            extra_runs.append((dag_id, extra_run))
            log(f"  triggered {dag_id} run {extra_run} (team queue {queue})")
        for dag_id in tables.group_by_dag_ids:
            client.set_paused(dag_id, False)
            log(f"  unpaused {dag_id} (scheduled on the asset {tables.output_table})")
        fault = BatchJobFault(stack.backend_url, join, fail_batch_job, log) if fail_batch_job else None
        if fault is not None:
            fault.inject()
        run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
        client.trigger(tables.dag_id, {"start_ds": start, "end_ds": end}, run_id=run_id,
                       note=f"make demo: {start}..{end}")
        stack.state["demo_run"] = {"dag_id": tables.dag_id, "run_id": run_id, "join": join}
        stack._save()
        log(f"  triggered {tables.dag_id} run {run_id} with conf start_ds={start} end_ds={end}")
        client.set_paused(tables.dag_id, False)
        log(f"  unpaused {tables.dag_id}")
        flow_runs: list[tuple[str, str]] = []
        for flow in flows:
            for chained in flow.chained:
                client.set_paused(chained, False)
                log(f"  unpaused {chained} (chained on {flow.label}'s output)")
            flow_run = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
            client.trigger(flow.dag_id, {"start_ds": start, "end_ds": end}, run_id=flow_run,
                           note=f"make demo: {start}..{end}")
            client.set_paused(flow.dag_id, False)
            flow_runs.append((flow.dag_id, flow_run))
            log(f"  triggered {flow.dag_id} run {flow_run}")

        log("-- following the run (task states as they change)")
        follower = Follower(client, log)
        cancel = ScheduledRunCanceller(client, [tables.dag_id, *(f.dag_id for f in flows)], log)
        follower.add(tables.dag_id, run_id, join)
        for dag_id, extra_run in [*extra_runs, *flow_runs]:
            follower.add(dag_id, extra_run, dag_id.split(".", 2)[-1])
        def tick() -> None:
            cancel()
            if fault is not None:
                fault()

        states = follower.wait([(tables.dag_id, run_id), *extra_runs, *flow_runs], timeout=900, tick=tick)
        state = states[(tables.dag_id, run_id)]
        if state != "success" and fail_batch_job == FAIL_ALWAYS:
            log(f"-- as asked (--fail-batch-job always), {tables.dag_id} run {run_id} ended {state}")
            log(failure_report(stack, client, tables.dag_id, run_id))
            log("  Recover it: python -m chronon_demo recover   (lifts the injected failure, clears "
                "wait_for_batch_inference, which submits a new job, and follows the run)")
            log(f"  Airflow UI {stack.ui_url}   login {stack.state['user']} / {stack.password}")
            return 0
        if state != "success":
            log(f"!! {tables.dag_id} run {run_id} ended {state}; task logs under {stack.airflow_home / 'logs'}")
            return 1
        failed_flows = [k for k in flow_runs if states[k] != "success"]
        if failed_flows:
            log(f"!! {failed_flows} did not succeed; task logs under {stack.airflow_home / 'logs'}")
            return 1

        gb_states = {}
        gb_run_ids: dict[str, str] = {}
        for gb in tables.group_by_dag_ids:
            log(f"-- waiting for {gb}, scheduled on the asset {tables.output_table}")
            run = wait_for_asset_triggered_run(client, gb, run_id, timeout=180, tick=cancel)
            for e in run["asset_events"]:
                log(f"  asset event on {e['name']} from {e['source_dag_id']} / {e['source_run_id']}: "
                    f"extra {e['extra']}")
            follower.add(gb, run["dag_run_id"], gb.split(".", 2)[-1])
            gb_run_ids[gb] = run["dag_run_id"]
            gb_states[gb] = follower.wait([(gb, run["dag_run_id"])], timeout=600, tick=cancel)[
                (gb, run["dag_run_id"])]
            log(f"  {gb}: asset-triggered run {run['dag_run_id']} {gb_states[gb]}")
        for flow, (_, flow_run) in zip(flows, flow_runs, strict=True):
            for gb in flow.chained:
                log(f"-- waiting for {gb}, chained on {flow.label}'s output")
                run = wait_for_asset_triggered_run(client, gb, flow_run, timeout=180, tick=cancel)
                follower.add(gb, run["dag_run_id"], gb.split(".", 2)[-1])
                gb_states[gb] = follower.wait([(gb, run["dag_run_id"])], timeout=600, tick=cancel)[
                    (gb, run["dag_run_id"])]
                log(f"  {gb}: asset-triggered run {run['dag_run_id']} {gb_states[gb]}")

        from chronon_demo import summary

        log("")
        log("== summary")
        log(summary.render(stack.warehouse, [*tables.sources, tables.raw_table, tables.output_table,
                                             *tables.group_by_tables,
                                             *(t for f in flows for t in (*f.writes, *f.chained_writes)
                                               if not t.endswith("_daily_stats"))],
                           ds_range(start, end), tables.output_table, tables.raw_table, stack.mail_dir))
        if distributed:
            log("")
            log("== where each task ran")
            log(placement_table(client, stack, [(tables.dag_id, run_id), *extra_runs,
                                                *[(gb, r) for gb, r in gb_run_ids.items()]]))
            log("")
            log("== topology")
            assert isinstance(stack, DistributedStack)
            for line in stack.describe():
                log(line)
        log("")
        log(f"Demo finished in {time.monotonic() - t_start:.0f}s; the stack keeps running.")
        log(f"  Airflow UI      {stack.ui_url}   login {stack.state['user']} / {stack.password}")
        log(f"  Chronon page    {stack.ui_url}/chronon/  (in the UI: Browse > Chronon)")
        log(f"  Model backend   {stack.backend_url}/docs")
        log(f"  Workspace       {stack.workspace}  (PIDs in {stack.state_path}, logs in {stack.logs_dir})")
        log("  Stop it with    make demo-stop")
        return 0 if all(s == "success" for s in gb_states.values()) else 1
    finally:
        client.close()
