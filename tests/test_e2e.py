"""End to end on real processes: Airflow standalone (scheduler, dag-processor, triggerer,
api-server; SQLite + LocalExecutor), the reference model backend and a local SMTP server.

Through the REST API: one join backfill that succeeds (its output tables, then the GroupBy upload
its asset event triggers) and one whose model batch job is made to fail (the failure e-mail).
"""
from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from chronon_airflow import warehouse as wh
from chronon_airflow.demo.mail import read_messages
from chronon_airflow.demo.run import (
    Follower,
    ScheduledRunCanceller,
    ds_list,
    join_dag_id,
    join_tables,
    wait_for_asset_triggered_run,
)
from chronon_airflow.demo.summary import model_output_columns, read_partitions

pytest_plugins = ["live_stack"]
pytest.register_assert_rewrite("live_stack")

from live_stack import E2E_END, E2E_START, FAIL_JOIN, OK_JOIN  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

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


def test_join_backfill_run_succeeds_through_the_deferred_sensor(e2e, live_stack):
    ok = e2e["ok"]
    assert e2e["states"][(ok.dag_id, OK_RUN)] == "success"
    tis = {t["task_id"]: t for t in live_stack.client.task_instances(ok.dag_id, OK_RUN)}
    assert {t["state"] for t in tis.values()} == {"success"}, {k: t["state"] for k, t in tis.items()}
    assert {"raw_join", "register_model_transform", "submit_batch_inference", WAIT_TASK} <= set(tis)


def test_output_tables_have_the_partitions_rows_and_model_outputs(e2e, live_stack):
    ok, root = e2e["ok"], live_stack.warehouse
    days = ds_list(E2E_START, E2E_END)
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


def test_asset_event_triggers_the_chained_group_by_upload(e2e, live_stack):
    ok = e2e["ok"]
    assert ok.group_by_dag_ids, f"no GroupBy upload is chained on {ok.output_table}"
    for gb in ok.group_by_dag_ids:
        run = e2e["gb_runs"][gb]
        assert run["run_type"] == "asset_triggered"
        assert run["final_state"] == "success"
        events = [e for e in run["asset_events"] if e["source_run_id"] == OK_RUN]
        assert events and events[0]["name"] == ok.output_table
        assert events[0]["extra"]["start_ds"] == E2E_START and events[0]["extra"]["end_ds"] == E2E_END
    for table in ok.group_by_tables:
        assert E2E_END in wh.list_partitions(live_stack.warehouse, table), table
        assert len(read_partitions(live_stack.warehouse, table, [E2E_END])) > 0, table


def test_failed_batch_job_fails_the_wait_task_and_emails_the_team(e2e, live_stack):
    bad = e2e["bad"]
    assert e2e["states"][(bad.dag_id, FAIL_RUN)] == "failed"
    tis = {t["task_id"]: t for t in live_stack.client.task_instances(bad.dag_id, FAIL_RUN)}
    assert tis[WAIT_TASK]["state"] == "failed"
    assert tis["submit_batch_inference"]["state"] == "success"
    assert not wh.list_partitions(live_stack.warehouse, bad.output_table)

    ds_range = f"{E2E_START}..{E2E_END}"
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
    assert ds_range in mail.subject
    for text in (FAIL_JOIN, join_dag_id(FAIL_JOIN), WAIT_TASK, FAIL_RUN, ds_range, "injected failure"):
        assert text in mail.body, f"{text!r} not in the e-mail body:\n{mail.body}"
    assert "risk-ml@example.com" in mail.to
