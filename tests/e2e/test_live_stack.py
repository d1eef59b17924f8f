"""End to end on real processes: Airflow's api-server, scheduler, dag-processor and triggerer
(SQLite + LocalExecutor), the reference model backend and a local SMTP server.

Through the REST API:

* one join run that succeeds (its output tables, the run note with its range, then the GroupBy
  upload its asset event triggers) and one whose model batch job always fails (one e-mail for the
  final failure, after the task's retry, naming the job and the recovery action);
* runs operators can trust: a batch job that fails once is recovered by the task's own retry (two
  jobs on the backend, no e-mail); a reversed range fails the first task before anything reaches
  the backend or Spark; a 2-day Airflow backfill computes both days, and a backfill given a conf
  range is refused; a partition wait deferred to the triggerer survives the triggerer being killed
  and replaced; the config-errors DAG is active and e-mails the team once; the landing deadline
  of a scheduled run e-mails the owners;
* exposure: every socket of the stack listens on loopback, every file holding a secret is 0600.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from chronon_airflow import warehouse as wh
from chronon_airflow.partitions import ds_range
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
from tests.support.distributed import backend_jobs, non_loopback_listeners, wait_until
from tests.support.live_stack import (  # noqa: E402
    BACKFILL_DAYS,
    CONFIG_ERRORS_DAG,
    E2E_END,
    E2E_START,
    FAIL_JOIN,
    LATE_DS,
    OK_JOIN,
    REFUSED_BACKFILL_DAYS,
    RETRY_DS,
    TASK_MODULES_DAG,
)
from tests.support.paths import PROJECT_ROOT  # noqa: E402

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
    # The grace lets each scheduled run miss its landing deadline (seconds here) before it is cancelled.
    cancel = ScheduledRunCanceller(client, [ok.dag_id, bad.dag_id], grace=45)
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
    yield {"ok": ok, "bad": bad, "states": states, "gb_runs": gb_runs, "cancel": cancel}
    httpx.delete(f"{stack.backend_url}/admin/faults", timeout=10)


def _tis(client, dag_id: str, run_id: str) -> dict[str, dict]:
    return {t["task_id"]: t for t in client.task_instances(dag_id, run_id)}


def _wait_run(client, dag_id: str, run_id: str, cancel, timeout: float = 480) -> str:
    follower = Follower(client)
    follower.add(dag_id, run_id)
    return follower.wait([(dag_id, run_id)], timeout=timeout, tick=cancel)[(dag_id, run_id)]


def _mails(live_stack, *needles: str) -> list:
    return [m for m in read_messages(live_stack.mail_dir) if all(n in m.subject for n in needles)]


@e2e_mark
def test_join_backfill_run_succeeds_through_the_deferred_sensor(e2e, live_stack):
    ok, client = e2e["ok"], live_stack.client
    assert e2e["states"][(ok.dag_id, OK_RUN)] == "success"
    tis = _tis(client, ok.dag_id, OK_RUN)
    # stats_summary skips: the local engine has no stats-summary.
    assert {t["state"] for k, t in tis.items() if k != "stats_summary"} == {"success"}, \
        {k: t["state"] for k, t in tis.items()}
    # Submit and wait are one task (its retry submits again); the range is checked first.
    assert {"check_range", "raw_join", "register_model_transform", WAIT_TASK} <= set(tis)
    assert "submit_batch_inference" not in tis
    assert tis[WAIT_TASK]["try_number"] == 1
    # The run's computed range is on the run itself, in the UI (the run note).
    note = client.dag_run(ok.dag_id, OK_RUN)["note"]
    assert f"Chronon: computes ds {E2E_START}..{E2E_END} (2 partitions) from the run's start_ds/end_ds" in note
    # The Spark steps ran in the Chronon Spark pool, which the stack created.
    assert tis["raw_join"]["pool"] == "chronon_spark"
    pool = client.request("GET", "/api/v2/pools/chronon_spark").json()
    assert pool["slots"] == 4
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
def test_failed_batch_job_fails_after_the_retry_and_emails_the_team_once(e2e, live_stack):
    """Every job of FAIL_JOIN fails: the task's retry submits a second job (a FAILED job is never
    reused), that fails too, and the team gets one e-mail for the final failure, never one per try,
    with the job's link, the recovery action and a plain-text part."""
    bad, client = e2e["bad"], live_stack.client
    assert e2e["states"][(bad.dag_id, FAIL_RUN)] == "failed"
    tis = _tis(client, bad.dag_id, FAIL_RUN)
    assert tis[WAIT_TASK]["state"] == "failed" and tis[WAIT_TASK]["try_number"] == 2
    assert not wh.list_partitions(live_stack.warehouse, bad.output_table)
    jobs = backend_jobs(live_stack.stack, FAIL_JOIN, E2E_START, E2E_END)
    assert [j["status"] for j in jobs] == ["FAILED", "FAILED"], jobs

    range_text = f"{E2E_START}..{E2E_END}"
    mails = wait_until("the failure e-mail", lambda: _mails(live_stack, FAIL_JOIN, WAIT_TASK), timeout=90)
    time.sleep(5)  # a second e-mail, if any, would have followed the first within seconds
    mails = _mails(live_stack, FAIL_JOIN, WAIT_TASK)
    everything = [m.subject for m in read_messages(live_stack.mail_dir)]
    assert len(mails) == 1, f"expected one failure e-mail for {FAIL_JOIN}.{WAIT_TASK}, got {everything}"
    mail = mails[0]
    assert range_text in mail.subject
    last_job = jobs[-1]["job_id"]
    for text in (FAIL_JOIN, join_dag_id(FAIL_JOIN), WAIT_TASK, FAIL_RUN, range_text, "injected failure",
                 "What to do", "it submits a new job", f"Model backend job {last_job}",
                 f"/modelBackend/jobs/{last_job}", "2 of 2"):
        assert text in mail.body, f"{text!r} not in the e-mail body:\n{mail.body}"
    assert "risk-ml@example.com" in mail.to
    import email
    import email.policy

    msg = email.message_from_bytes(mail.path.read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert {p.get_content_type() for p in msg.walk()} >= {"text/plain", "text/html"}


@e2e_mark
def test_a_batch_job_that_fails_once_is_recovered_by_the_tasks_own_retry(e2e, live_stack):
    """Item 2 of the issue: the first job FAILS, the task's retry (not a clear, not the submit
    task) submits again and the run succeeds, with exactly two jobs on the backend and no e-mail."""
    client, stack, bad = live_stack.client, live_stack.stack, e2e["bad"]
    httpx.post(f"{stack.backend_url}/admin/faults", json={"fail_jobs_for_joins": [FAIL_JOIN]},
               timeout=10).raise_for_status()
    run_id = "e2e_retry"
    client.trigger(bad.dag_id, {"start_ds": RETRY_DS, "end_ds": RETRY_DS}, run_id=run_id)
    first = wait_until("the first batch job to fail", lambda: [
        j for j in backend_jobs(stack, FAIL_JOIN, RETRY_DS, RETRY_DS) if j["status"] == "FAILED"], timeout=420,
        interval=0.5)
    # Lift the fault at once: the retry comes RETRY_DELAY seconds after the trigger notices the failure.
    httpx.post(f"{stack.backend_url}/admin/faults", json={"fail_jobs_for_joins": []}, timeout=10).raise_for_status()
    assert _wait_run(client, bad.dag_id, run_id, e2e["cancel"]) == "success"
    ti = _tis(client, bad.dag_id, run_id)[WAIT_TASK]
    assert ti["state"] == "success" and ti["try_number"] == 2, ti
    jobs = backend_jobs(stack, FAIL_JOIN, RETRY_DS, RETRY_DS)
    assert [j["status"] for j in jobs] == ["FAILED", "SUCCEEDED"] and jobs[0]["job_id"] == first[0]["job_id"]
    assert RETRY_DS in wh.list_partitions(live_stack.warehouse, bad.output_table)
    assert not _mails(live_stack, FAIL_JOIN, RETRY_DS), "a try that was retried must not e-mail anyone"


@e2e_mark
def test_a_reversed_range_fails_the_first_task_before_anything_runs(e2e, live_stack):
    client, ok = live_stack.client, e2e["ok"]
    run_id = "e2e_reversed"
    client.trigger(ok.dag_id, {"start_ds": "2024-04-12", "end_ds": "2024-04-10"}, run_id=run_id)
    assert _wait_run(client, ok.dag_id, run_id, e2e["cancel"], timeout=240) == "failed"
    tis = _tis(client, ok.dag_id, run_id)
    assert tis["check_range"]["state"] == "failed" and tis["check_range"]["try_number"] == 1
    others = {t: ti["state"] for t, ti in tis.items() if t != "check_range"}
    assert set(others.values()) == {"upstream_failed"}, others  # no sensor waited, no model registered
    for ds in ("2024-04-10", "2024-04-11", "2024-04-12"):
        assert not backend_jobs(live_stack.stack, OK_JOIN, ds, ds)
    note = client.dag_run(ok.dag_id, run_id)["note"]
    assert "refused" in note and "start_ds 2024-04-12 is after end_ds 2024-04-10" in note
    mails = wait_until("the check_range e-mail", lambda: _mails(live_stack, OK_JOIN, "check_range", "2024-04-12"),
                       timeout=90)
    assert "Trigger the DAG again with a valid range" in mails[0].body


@e2e_mark
def test_airflow_backfill_computes_each_day_and_refuses_a_conf_range(e2e, live_stack):
    """Airflow's own backfill (UI "Backfill", ``airflow backfill create``, POST /api/v2/backfills):
    each run computes the ds of its own data interval; a range in its conf is refused, never applied
    to every run."""
    client, ok, cancel = live_stack.client, e2e["ok"], e2e["cancel"]
    days = list(BACKFILL_DAYS)
    for day in days + list(REFUSED_BACKFILL_DAYS):
        assert day not in wh.list_partitions(live_stack.warehouse, ok.output_table)
    def backfill_runs(expected: int) -> list:
        """Until the DAG's backfill runs number ``expected`` and all ended (one backfill at a time:
        Airflow refuses a second one while the first runs)."""
        deadline = time.monotonic() + 600
        runs: list = []
        while time.monotonic() < deadline:
            cancel()
            runs = client.dag_runs(ok.dag_id, run_type="backfill")
            if len(runs) == expected and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            time.sleep(3)
        raise AssertionError(f"backfill runs not done after 600s: {runs}")

    backfill = client.create_backfill(ok.dag_id, days[0], days[-1])
    backfill_runs(2)
    wait_until("the first backfill to complete", lambda: client.request(
        "GET", f"/api/v2/backfills/{backfill['id']}").json().get("completed_at"), timeout=120, interval=2)
    refused = client.create_backfill(ok.dag_id, REFUSED_BACKFILL_DAYS[0], REFUSED_BACKFILL_DAYS[-1],
                                     conf={"start_ds": E2E_START, "end_ds": E2E_END})
    runs = backfill_runs(4)
    by_day = {r["data_interval_start"][:10]: r for r in runs}
    assert sorted(by_day) == sorted(days + list(REFUSED_BACKFILL_DAYS)), (backfill, refused, runs)
    for day in days:
        assert by_day[day]["state"] == "success", by_day[day]
        assert f"Chronon: computes ds {day} from its data interval (backfill)" in by_day[day]["note"]
        assert day in wh.list_partitions(live_stack.warehouse, ok.raw_table)
        assert day in wh.list_partitions(live_stack.warehouse, ok.output_table)
        assert [j["status"] for j in backend_jobs(live_stack.stack, OK_JOIN, day, day)] == ["SUCCEEDED"]
    for day in REFUSED_BACKFILL_DAYS:
        run = by_day[day]
        assert run["state"] == "failed" and "given to an Airflow backfill" in run["note"], run
        tis = _tis(client, ok.dag_id, run["dag_run_id"])
        assert tis["check_range"]["state"] == "failed"
        assert {ti["state"] for t, ti in tis.items() if t != "check_range"} == {"upstream_failed"}
        assert day not in wh.list_partitions(live_stack.warehouse, ok.raw_table)
    # The conf's range was computed by no backfill run either.
    assert not backend_jobs(live_stack.stack, OK_JOIN, E2E_START, E2E_START)


@e2e_mark
def test_a_deferred_partition_wait_survives_a_triggerer_restart(e2e, live_stack):
    """The partition sensors of a run whose sources have not landed defer to the triggerer; the
    triggerer is SIGKILLed (its whole tree) and a new one started; the data lands; the new triggerer
    takes the waits over and the run succeeds, the sensors never retried."""
    from chronon_local_engine import sample_data

    client, stack, ok = live_stack.client, live_stack.stack, e2e["ok"]
    run_id = "e2e_triggerer_restart"
    client.trigger(ok.dag_id, {"start_ds": LATE_DS, "end_ds": LATE_DS}, run_id=run_id)
    sensors: list[str] = []

    def all_deferred():
        e2e["cancel"]()
        tis = _tis(client, ok.dag_id, run_id)
        sensors[:] = [t for t in tis if t.startswith("wait_for_") and t != WAIT_TASK]
        return bool(sensors) and all(tis[t]["state"] == "deferred" for t in sensors)

    wait_until("the partition sensors to defer", all_deferred, timeout=240)
    old = stack.record("triggerer")["pid"]
    killed = stack.kill("triggerer")
    print(f"SIGKILLed the triggerer tree: {killed}")
    assert old in killed and not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
    time.sleep(3)
    assert all(_tis(client, ok.dag_id, run_id)[t]["state"] == "deferred" for t in sensors)
    sample_data.generate(stack.warehouse, LATE_DS, LATE_DS)  # the sources land while no triggerer runs
    new = stack.restart("triggerer")
    assert new["pid"] != old and stack.record("triggerer")["pid"] == new["pid"]
    assert _wait_run(client, ok.dag_id, run_id, e2e["cancel"], timeout=480) == "success"
    tis = _tis(client, ok.dag_id, run_id)
    for t in sensors:
        assert tis[t]["state"] == "success" and tis[t]["try_number"] == 1, tis[t]
    assert LATE_DS in wh.list_partitions(live_stack.warehouse, ok.output_table)


@e2e_mark
def test_config_errors_dag_is_active_fails_visibly_and_emails_the_team_once(e2e, live_stack):
    from tests.support.live_stack import BROKEN_PATH

    client = live_stack.client
    dag = client.get_dag(CONFIG_ERRORS_DAG)
    assert dag["is_paused"] is False, dag
    # Its schedule made a run already; one more, with a logical date, reports the same errors.
    first = wait_until("a run of the config-errors DAG", lambda: [
        r for r in client.dag_runs(CONFIG_ERRORS_DAG) if r["state"] in ("success", "failed")], timeout=240)
    assert first[0]["state"] == "failed"
    wait_until("the config-error e-mail", lambda: _mails(live_stack, "broken config", BROKEN_PATH), timeout=90)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.request("POST", f"/api/v2/dags/{CONFIG_ERRORS_DAG}/dagRuns", json={
        "dag_run_id": "e2e_config_errors_again", "logical_date": now, "conf": {}})
    assert _wait_run(client, CONFIG_ERRORS_DAG, "e2e_config_errors_again", e2e["cancel"], timeout=240) == "failed"
    time.sleep(10)
    mails = _mails(live_stack, "broken config", BROKEN_PATH)
    assert len(mails) == 1, [m.subject for m in read_messages(live_stack.mail_dir)]
    assert "search-ml@example.com" in mails[0].to and BROKEN_PATH in mails[0].body
    assert "Fix the file" in mails[0].body


@e2e_mark
def test_landing_deadline_emails_the_owners_of_a_late_scheduled_run(e2e, live_stack):
    """The scheduled run that unpausing the join created (the sample data has no partition for it)
    missed its landing deadline (a few seconds after it was queued, on this stack): the owners get
    the Deadline alert's e-mail; backfill and manual runs never do."""
    ok = e2e["ok"]
    mails = wait_until("the landing-deadline e-mail", lambda: _mails(live_stack, OK_JOIN, "not landed"),
                       timeout=240)
    assert ok.output_table in mails[0].subject and "search-ml@example.com" in mails[0].to
    assert "landing_deadline_hours" in mails[0].body
    for day in BACKFILL_DAYS + (E2E_START,):
        assert not _mails(live_stack, OK_JOIN, f"not landed for ds {day}")


@e2e_mark
def test_the_readmes_recovery_of_a_failed_batch_job(e2e, live_stack):
    """What the failure e-mail and the README say to do, done by ``python -m chronon_demo recover``:
    lift the backend's failure and clear wait_for_batch_inference of the failed run: it submits a
    new job (the FAILED ones are never reused) and the run succeeds."""
    from chronon_demo.run import recover

    client, stack, bad = live_stack.client, live_stack.stack, e2e["bad"]
    assert client.dag_run(bad.dag_id, FAIL_RUN)["state"] == "failed"
    stack.state["demo_run"] = {"dag_id": bad.dag_id, "run_id": FAIL_RUN, "join": FAIL_JOIN}
    stack._save()
    assert recover(stack.workspace) == 0
    assert client.dag_run(bad.dag_id, FAIL_RUN)["state"] == "success"
    jobs = backend_jobs(stack, FAIL_JOIN, E2E_START, E2E_END)
    assert [j["status"] for j in jobs] == ["FAILED", "FAILED", "SUCCEEDED"], jobs
    assert wh.list_partitions(live_stack.warehouse, bad.output_table)[-2:] == [E2E_START, E2E_END]


@e2e_mark
def test_the_stack_listens_on_loopback_only_and_keeps_secrets_private(live_stack):
    stack = live_stack.stack
    assert not non_loopback_listeners(stack)
    # No fixed port (Airflow's log servers default to 8793/8794) and every listener is one we chose.
    members = {p.pid for p in Stack._members(stack.state)}
    ports = {c.laddr.port for c in psutil.net_connections("tcp")
             if c.status == psutil.CONN_LISTEN and c.pid in members}
    assert not ports & {8080, 8793, 8794}, ports
    assert {stack.state["ports"][k] for k in ("api", "backend", "logs")} <= ports
    secrets = [stack.state[k] for k in ("password", "jwt_secret", "fernet_key", "api_secret_key")]
    leaked = []
    for path in stack.workspace.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            data = path.read_bytes()
            if any(s.encode() in data for s in secrets) and stat.S_IMODE(path.stat().st_mode) != 0o600:
                leaked.append(f"{path} {oct(path.stat().st_mode)}")
    assert not leaked, leaked
    for name in ("stack.json", "airflow/passwords.json", "airflow/airflow.cfg"):
        assert stat.S_IMODE((stack.workspace / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(stack.workspace.stat().st_mode) == 0o700


@e2e_mark  # a task run on the live stack: real Airflow processes
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

@e2e_mark  # starts and kills real process trees (the stack's stop), though not Airflow's
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
        # mid.py exits right after starting escaped.py, and tree.py reaps it; on a loaded machine
        # that takes a moment (until then mid.py is a zombie child, still a member of the stack).
        def mid_py_gone() -> bool:
            children = leader.children(recursive=True)
            return escaped.pid not in {c.pid for c in children} and len(children) == 1

        while not mid_py_gone() and time.monotonic() < deadline:
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
    for key in ("AIRFLOW__CHRONON__REPO_PATH", "AIRFLOW__CHRONON__WAREHOUSE",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        assert key in env and key in native, key
    # Both serve the execution API on the API server's own port.
    assert native["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == \
        f"http://127.0.0.1:{native['AIRFLOW__API__PORT']}/execution/"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith(f":{env['AIRFLOW__API__PORT']}/execution/")
    assert native["AIRFLOW__API__PORT"] != "8080"
