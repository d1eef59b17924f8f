"""``make demo``: the main job end to end on real Airflow processes.

1. a fresh workspace (``.chronon/demo``) and the sample source tables;
2. the stack: reference model backend, SMTP sink, ``airflow standalone`` (see :mod:`.stack`);
3. through the REST API: unpause the join's DAG and its chained GroupBy upload DAG, trigger the
   join's backfill for a multi-day range, print task states as they change;
4. wait for the GroupBy upload run that the join's output asset event triggers;
5. print the summary and the UI login, and leave the stack running (``make demo-stop``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from chronon_demo.client import AirflowClient
from chronon_airflow.partitions import ds_range
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


def join_tables(repo: Path, join: str) -> JoinTables:
    """What the demo reads and writes, from the plan of ``repo``."""
    from chronon_airflow.config import load_repo
    from chronon_airflow.plan import build_plan

    loaded = load_repo(repo)
    conf = loaded.joins[join]
    plan = build_plan(loaded)
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
    use: with catchup off the scheduler creates the latest interval's run again)."""

    NOTE = "Cancelled by the demo: the sample data has no partitions for this interval."

    def __init__(self, client: AirflowClient, dag_ids: list[str], log: Printer = _print):
        self.client, self.dag_ids, self.log = client, dag_ids, log
        self.cancelled: list[str] = []

    def __call__(self) -> None:
        for dag_id in self.dag_ids:
            for run in self.client.dag_runs(dag_id, run_type="scheduled"):
                if run["state"] in TERMINAL:
                    continue
                self.client.set_dag_run_state(dag_id, run["dag_run_id"], "failed", note=self.NOTE)
                self.cancelled.append(run["dag_run_id"])
                self.log(f"  marked the scheduled run {run['dag_run_id']} of {dag_id} failed: the sample "
                         "data has no partitions for it")


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


def start_stack(config: StackConfig, dag_ids: list[str], log: Printer = _print,
                ready_timeout: float = 300.0) -> tuple[Stack, AirflowClient]:
    """Start the stack, wait until healthy, log in, wait until ``dag_ids`` are parsed.
    Stops what it started if any step fails."""
    stack = Stack(config, log)
    stack.start()
    try:
        stack.wait_ready(ready_timeout)
        client = AirflowClient(stack.ui_url, stack.state["user"], stack.password)
        client.login()
        log(f"  logged in to the REST API as {stack.state['user']} (JWT from POST /auth/token)")
        client.wait_for_dags(dag_ids, timeout=ready_timeout)
        log(f"  {len(client.dag_ids())} DAGs parsed")
        return stack, client
    except BaseException:
        log("  start failed: stopping what was started")
        stack.stop()
        raise


def run_demo(workspace: Path, repo: Path, join: str, start: str, end: str, log: Printer = _print) -> int:
    t_start = time.monotonic()
    tables = join_tables(repo, join)
    running = Stack.running_state(workspace)
    if running:
        pids = ", ".join(str(p["pid"]) for p in running["processes"])
        log(f"A demo is already running ({running['ui_url']}, PIDs {pids}): stopping it first.")
        Stack.stop_state(running, log)

    log(f"== chronon-airflow demo: {tables.dag_id} for {start}..{end}")
    config = StackConfig(workspace=workspace, repo_path=repo)
    stack = Stack(config, log)
    stack.reset_workspace()

    from chronon_local_engine import sample_data

    log(f"-- sample source tables {DATA_START}..{end} in {stack.warehouse}")
    for table, rows in sample_data.generate(stack.warehouse, DATA_START, end).items():
        log(f"  {table}: {rows} rows")

    log("-- starting the stack (Airflow standalone: api-server, scheduler, dag-processor, triggerer; "
        "SQLite + LocalExecutor)")
    stack, client = start_stack(config, [tables.dag_id, *tables.group_by_dag_ids], log)
    try:
        log("-- triggering through the REST API v2")
        for dag_id in tables.group_by_dag_ids:
            client.set_paused(dag_id, False)
            log(f"  unpaused {dag_id} (scheduled on the asset {tables.output_table})")
        run_id = f"demo__{time.strftime('%Y%m%dT%H%M%S')}"
        client.trigger(tables.dag_id, {"start_ds": start, "end_ds": end}, run_id=run_id,
                       note=f"make demo: {start}..{end}")
        log(f"  triggered {tables.dag_id} run {run_id} with conf start_ds={start} end_ds={end}")
        client.set_paused(tables.dag_id, False)
        log(f"  unpaused {tables.dag_id}")

        log("-- following the run (task states as they change)")
        follower = Follower(client, log)
        cancel = ScheduledRunCanceller(client, [tables.dag_id], log)
        follower.add(tables.dag_id, run_id, join)
        state = follower.wait([(tables.dag_id, run_id)], timeout=900, tick=cancel)[(tables.dag_id, run_id)]
        if state != "success":
            log(f"!! {tables.dag_id} run {run_id} ended {state}; task logs under {stack.airflow_home / 'logs'}")
            return 1

        gb_states = {}
        for gb in tables.group_by_dag_ids:
            log(f"-- waiting for {gb}, scheduled on the asset {tables.output_table}")
            run = wait_for_asset_triggered_run(client, gb, run_id, timeout=180, tick=cancel)
            for e in run["asset_events"]:
                log(f"  asset event on {e['name']} from {e['source_dag_id']} / {e['source_run_id']}: "
                    f"extra {e['extra']}")
            follower.add(gb, run["dag_run_id"], gb.split(".", 2)[-1])
            gb_states[gb] = follower.wait([(gb, run["dag_run_id"])], timeout=600, tick=cancel)[
                (gb, run["dag_run_id"])]
            log(f"  {gb}: asset-triggered run {run['dag_run_id']} {gb_states[gb]}")

        from chronon_demo import summary

        log("")
        log("== summary")
        log(summary.render(stack.warehouse, [*tables.sources, tables.raw_table, tables.output_table,
                                             *tables.group_by_tables],
                           ds_range(start, end), tables.output_table, tables.raw_table, stack.mail_dir))
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
