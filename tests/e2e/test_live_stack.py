"""End to end on real processes: Airflow standalone (scheduler, dag-processor, triggerer,
api-server; SQLite + LocalExecutor), the reference model backend and a local SMTP server.

Through the REST API: one join backfill that succeeds (its output tables, then the GroupBy upload
its asset event triggers) and one whose model batch job is made to fail (the failure e-mail).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pandas as pd
import pytest

from chronon_airflow import warehouse as wh
from chronon_demo.mail import read_messages
from chronon_demo.run import (
    Follower,
    ScheduledRunCanceller,
    join_dag_id,
    join_tables,
    wait_for_asset_triggered_run,
)
from chronon_demo.stack import MARKER, Stack, StackConfig
from chronon_demo.summary import model_output_columns, read_partitions
from chronon_airflow.partitions import ds_range

from tests.support.paths import PROJECT_ROOT  # noqa: E402
from tests.support.live_stack import E2E_END, E2E_START, FAIL_JOIN, OK_JOIN, TASK_MODULES_DAG  # noqa: E402

pytestmark = [pytest.mark.timeout(900)]
e2e_mark = pytest.mark.e2e

OK_RUN, FAIL_RUN = "e2e_ok", "e2e_fail"
WAIT_TASK = "wait_for_batch_inference"


@pytest.fixture(scope="module")
def e2e(live_stack):
    """Trigger both joins for E2E_START..E2E_END and wait for both runs and the chained upload."""
    client, stack = live_stack.client, live_stack.stack
    ok, bad = join_tables(live_stack.repo, OK_JOIN), join_tables(live_stack.repo, FAIL_JOIN)
    r = httpx.post(f"{stack.backend_url}/admin/faults", json={"fail_jobs_for_joins": [FAIL_JOIN]}, timeout=10)
    r.raise_for_status()
    assert r.json()["fail_jobs_for_joins"] == [FAIL_JOIN]

    for gb in ok.group_by_dag_ids:
        client.set_paused(gb, False)
    conf = {"start_ds": E2E_START, "end_ds": E2E_END}
    client.trigger(ok.dag_id, conf, run_id=OK_RUN)
    client.trigger(bad.dag_id, conf, run_id=FAIL_RUN)
    for dag_id in (ok.dag_id, bad.dag_id):
        client.set_paused(dag_id, False)

    follower = Follower(client)
    cancel = ScheduledRunCanceller(client, [ok.dag_id, bad.dag_id])
    follower.add(ok.dag_id, OK_RUN, OK_JOIN)
    follower.add(bad.dag_id, FAIL_RUN, FAIL_JOIN)
    states = follower.wait([(ok.dag_id, OK_RUN), (bad.dag_id, FAIL_RUN)], timeout=480, tick=cancel)

    gb_runs = {}
    if states[(ok.dag_id, OK_RUN)] == "success":
        for gb in ok.group_by_dag_ids:
            run = wait_for_asset_triggered_run(client, gb, OK_RUN, timeout=180, tick=cancel)
            follower.add(gb, run["dag_run_id"], gb)
            run["final_state"] = follower.wait([(gb, run["dag_run_id"])], timeout=300, tick=cancel)[
                (gb, run["dag_run_id"])]
            gb_runs[gb] = run
    yield {"ok": ok, "bad": bad, "states": states, "gb_runs": gb_runs}
    httpx.delete(f"{stack.backend_url}/admin/faults", timeout=10)


@e2e_mark
def test_join_backfill_run_succeeds_through_the_deferred_sensor(e2e, live_stack):
    ok = e2e["ok"]
    assert e2e["states"][(ok.dag_id, OK_RUN)] == "success"
    tis = {t["task_id"]: t for t in live_stack.client.task_instances(ok.dag_id, OK_RUN)}
    assert {t["state"] for t in tis.values()} == {"success"}, {k: t["state"] for k, t in tis.items()}
    assert {"raw_join", "register_model_transform", "submit_batch_inference", WAIT_TASK} <= set(tis)


@e2e_mark
def test_output_tables_have_the_partitions_rows_and_model_outputs(e2e, live_stack):
    ok, root = e2e["ok"], live_stack.warehouse
    days = ds_range(E2E_START, E2E_END)
    for table in (ok.raw_table, ok.output_table):
        assert wh.list_partitions(root, table) == days, table
    raw = read_partitions(root, ok.raw_table, days)
    out = read_partitions(root, ok.output_table, days)
    assert len(out) > 0
    assert len(out) == len(raw)  # the model transform adds columns, never drops rows
    for ds in days:
        assert (out["ds"] == ds).sum() > 0, ds
    model_cols = model_output_columns(root, ok.output_table, ok.raw_table, days[0])
    assert model_cols, f"no model output column in {ok.output_table}: {list(out.columns)}"
    for col in model_cols:
        assert out[col].notna().all(), f"{col} has nulls"
    # The output carries every raw-join row unchanged (same keys, same order of magnitude of ts).
    keys = [c for c in raw.columns if c in ("user_id", "item_id", "ts", "ds")]
    pd.testing.assert_frame_equal(raw[keys].sort_values(keys).reset_index(drop=True),
                                  out[keys].sort_values(keys).reset_index(drop=True))


@e2e_mark
def test_asset_event_triggers_the_chained_group_by_upload(e2e, live_stack):
    ok = e2e["ok"]
    assert ok.group_by_dag_ids, f"no GroupBy upload is chained on {ok.output_table}"
    for gb in ok.group_by_dag_ids:
        assert gb in e2e["gb_runs"], f"no run of {gb}: the join run ended {e2e['states'][(ok.dag_id, OK_RUN)]}"
        run = e2e["gb_runs"][gb]
        assert run["run_type"] == "asset_triggered"
        assert run["final_state"] == "success"
        events = [e for e in run["asset_events"] if e["source_run_id"] == OK_RUN]
        assert events and events[0]["name"] == ok.output_table
        assert events[0]["extra"]["start_ds"] == E2E_START and events[0]["extra"]["end_ds"] == E2E_END
    for table in ok.group_by_tables:
        assert E2E_END in wh.list_partitions(live_stack.warehouse, table), table
        assert len(read_partitions(live_stack.warehouse, table, [E2E_END])) > 0, table


@e2e_mark
def test_failed_batch_job_fails_the_wait_task_and_emails_the_team(e2e, live_stack):
    bad = e2e["bad"]
    assert e2e["states"][(bad.dag_id, FAIL_RUN)] == "failed"
    tis = {t["task_id"]: t for t in live_stack.client.task_instances(bad.dag_id, FAIL_RUN)}
    assert tis[WAIT_TASK]["state"] == "failed"
    assert tis["submit_batch_inference"]["state"] == "success"
    assert not wh.list_partitions(live_stack.warehouse, bad.output_table)

    range_text = f"{E2E_START}..{E2E_END}"
    deadline = time.monotonic() + 90
    mails = []
    while time.monotonic() < deadline:
        mails = [m for m in read_messages(live_stack.mail_dir) if FAIL_JOIN in m.subject and WAIT_TASK in m.subject]
        if mails:
            break
        time.sleep(2)
    everything = [m.subject for m in read_messages(live_stack.mail_dir)]
    assert len(mails) == 1, f"expected one failure e-mail for {FAIL_JOIN}.{WAIT_TASK}, got {everything}"
    mail = mails[0]
    assert range_text in mail.subject
    for text in (FAIL_JOIN, join_dag_id(FAIL_JOIN), WAIT_TASK, FAIL_RUN, range_text, "injected failure"):
        assert text in mail.body, f"{text!r} not in the e-mail body:\n{mail.body}"
    assert "risk-ml@example.com" in mail.to


@e2e_mark
def test_airflow_backfill_computes_the_interval_ds(e2e, live_stack):
    """Airflow's own backfill (UI "Backfill", ``airflow backfill create``): each run covers the ds of
    its data interval, with no params at all."""
    client, ok = live_stack.client, e2e["ok"]
    day = "2024-04-19"  # outside the manual range above, inside the sample data
    assert day not in wh.list_partitions(live_stack.warehouse, ok.output_table)
    backfill = client.request("POST", "/api/v2/backfills", json={
        "dag_id": ok.dag_id, "from_date": f"{day}T00:00:00Z", "to_date": f"{day}T00:00:00Z",
        "max_active_runs": 1, "reprocess_behavior": "none"}).json()
    cancel = ScheduledRunCanceller(client, [ok.dag_id])
    deadline = time.monotonic() + 420
    runs: list = []
    while time.monotonic() < deadline:
        cancel()
        runs = client.dag_runs(ok.dag_id, run_type="backfill")
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(3)
    assert [r["state"] for r in runs] == ["success"], (backfill, runs)
    assert runs[0]["data_interval_start"].startswith(day)
    assert day in wh.list_partitions(live_stack.warehouse, ok.raw_table)
    assert day in wh.list_partitions(live_stack.warehouse, ok.output_table)


def test_bench_task_start_context_is_what_a_real_task_process_has(live_stack):
    """``make bench`` P2 times the DAG file's parse in a process prepared like a task process
    (parse_probe._task_process_imports). That preparation must not credit us with modules a real
    task start has to import: every module it loads is already loaded in a real LocalExecutor task
    process of this stack when that process parses its DAG file."""
    client, stack = live_stack.client, live_stack.stack
    client.set_paused(TASK_MODULES_DAG, False)
    client.trigger(TASK_MODULES_DAG, {}, run_id="modules")
    deadline = time.monotonic() + 180
    while client.dag_run(TASK_MODULES_DAG, "modules")["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, "the task-modules probe run did not finish"
        time.sleep(2)
    assert client.dag_run(TASK_MODULES_DAG, "modules")["state"] == "success"
    real = json.loads((Path(stack.config.dags_folder) / "task_modules.json").read_text())
    assert "scheduler" in real["argv"]  # LocalExecutor: the task process is a fork of the scheduler

    out = subprocess.run([sys.executable, "-m", "chronon_bench.parse_probe", "--modules"],
                         env=stack.airflow_env(), capture_output=True, text=True, timeout=120, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert "chronon_airflow.sensors.model_batch_job" in probe  # the plugin was loaded
    missing = sorted(set(probe) - set(real["modules"]))
    assert not missing, f"the P2 probe preloads modules a real task start imports itself: {missing[:20]}"
    assert len(probe) < len(real["modules"])


# -- without the live stack ------------------------------------------------------------------------

def test_stop_ends_the_stack_tree_and_nothing_else(tmp_path):
    """Real processes: a recorded one, its child, and a grandchild that escaped into its own session
    (re-parented, not in the group) all end; a process the stack did not start survives."""
    stack = Stack(StackConfig(workspace=tmp_path), log=lambda _: None)
    stack.state = {**stack.new_state(), "processes": []}
    pid_file = tmp_path / "escaped.pid"
    escaped_py = tmp_path / "escaped.py"
    escaped_py.write_text(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(300)\n")
    # tree.py -> sleeper child, and mid.py -> escaped.py (own session); mid.py exits at once, so
    # escaped.py is re-parented: only the environment marker still ties it to the stack.
    mid_py = tmp_path / "mid.py"
    mid_py.write_text(f"import subprocess, sys\nsubprocess.Popen([sys.executable, {str(escaped_py)!r}], "
                      "start_new_session=True)\n")
    tree_py = tmp_path / "tree.py"
    tree_py.write_text("import subprocess, sys, time\n"
                       "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
                       f"subprocess.run([sys.executable, {str(mid_py)!r}])\n"
                       "time.sleep(300)\n")
    stack._spawn("tree", [sys.executable, str(tree_py)], stack._base_env())
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        escaped = psutil.Process(int(pid_file.read_text()))
        leader = psutil.Process(stack.state["processes"][0]["pid"])
        assert escaped.environ()[MARKER] == stack.state["id"]
        # mid.py exits right after starting escaped.py; on a loaded machine that takes a moment.
        while escaped.pid in {c.pid for c in leader.children(recursive=True)} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert escaped.pid not in {c.pid for c in leader.children(recursive=True)}
        assert os.getsid(escaped.pid) != os.getsid(leader.pid)
        members = {p.pid for p in Stack._members(stack.state)}
        assert {leader.pid, escaped.pid} <= members and len(members) == 3
        assert bystander.pid not in members

        assert stack.stop() == 3
        for p in (leader, escaped):
            assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        assert bystander.poll() is None
        assert Stack.running_state(tmp_path) is None
    finally:
        bystander.kill()
        Stack.stop_state(stack.state)


def test_demo_environment_agrees_with_docker_compose(tmp_path):
    """The native stack and docker-compose.yaml configure the same connections and settings."""
    import yaml

    stack = Stack(StackConfig(workspace=tmp_path))
    stack.state = stack.new_state()
    native = stack.airflow_env()
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common"]["environment"]
    native_conns = {k for k in native if k.startswith("AIRFLOW_CONN_")}
    assert native_conns == {k for k in env if k.startswith("AIRFLOW_CONN_")}
    for key in native_conns:
        assert json.loads(native[key])["conn_type"] == json.loads(env[key])["conn_type"], key
    for key in ("AIRFLOW__CHRONON__ENGINE", "AIRFLOW__CHRONON__CATALOG", "AIRFLOW__CHRONON__SPARK_CONN_ID",
                "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__CORE__LAZY_LOAD_PLUGINS"):
        assert str(native[key]).lower() == str(env[key]).lower(), key
    for key in ("AIRFLOW__CHRONON__REPO_PATH", "AIRFLOW__CHRONON__WAREHOUSE", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        assert key in env and key in native, key
    # Both serve the execution API on the API server's own port.
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == \
        f"http://127.0.0.1:{native['AIRFLOW__API__PORT']}/execution/"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith(f":{env['AIRFLOW__API__PORT']}/execution/")
    assert native["AIRFLOW__API__PORT"] != "8080"
