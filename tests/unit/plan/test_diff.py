"""``chronon_airflow.plan.diff``: the pure diff of two plan documents, on hand-built plans."""
from __future__ import annotations

import copy
import json

from chronon_airflow.plan.diff import diff_plans, format_text, list_edits, replace_root

JOIN = "chronon.join_backfill.risk.txn_fraud.v1"
TEAM = "chronon.metadata_upload.risk"
ROOT = "/srv/repo"


def _argv(memory: str = "2G", root: str = ROOT) -> list[str]:
    return ["spark-submit", "--master", "yarn", "--conf", f"spark.yarn.appMasterEnv.DRIVER_MEMORY={memory}",
            "--conf", f"spark.yarn.appMasterEnv.CHRONON_CONF_PATH={root}/production/joins/risk/txn_fraud.v1",
            "--name", "chronon_joins_backfill_risk_txn_fraud_v1", "driver.py", "join",
            "--conf-path", f"{root}/production/joins/risk/txn_fraud.v1", "--end-date", "<end_ds>"]


def _plan() -> dict:
    wait = {"task_id": "wait_for_payments.card_transactions_ds", "kind": "wait_for_partition", "upstream": [],
            "partition": {"table": "payments.card_transactions", "column": "ds", "subpartitions": {},
                          "lag": 0, "start": "2024-03-15", "end": None}}
    raw = {"task_id": "raw_join", "kind": "raw_join", "upstream": [wait["task_id"]], "argv": _argv()}
    model = {"task_id": "register_model.fraud_scorer", "kind": "register_model", "upstream": [],
             "model": "fraud_scorer", "backend": "reference"}
    join = {"dag_id": JOIN, "kind": "join_backfill", "team": "risk", "schedule": "@daily",
            "source": "production/joins/risk/txn_fraud.v1", "tasks": [wait, raw, model],
            "reads": ["payments.card_transactions"],
            "writes": ["risk_features.risk_txn_fraud_v1_pre_mt", "risk_features.risk_txn_fraud_v1"]}
    team = {"dag_id": TEAM, "kind": "metadata_upload", "team": "risk", "schedule": "*/20 * * * *",
            "source": "teams.json", "reads": [], "writes": [],
            "tasks": [{"task_id": "register_team_model_transforms", "kind": "register_team_model_transforms",
                       "upstream": [], "joins": ["risk.txn_fraud.v1"]}]}
    return {"dags": [join, team], "errors": [], "warnings": []}


def _dag(plan: dict, dag_id: str) -> dict:
    return next(d for d in plan["dags"] if d["dag_id"] == dag_id)


def _task(plan: dict, dag_id: str, task_id: str) -> dict:
    return next(t for t in _dag(plan, dag_id)["tasks"] if t["task_id"] == task_id)


def _changed_dag(diff: dict, dag_id: str) -> dict:
    return next(d for d in diff["dags"]["changed"] if d["dag_id"] == dag_id)


def _fields(entry: dict) -> dict:
    return {f["field"]: f for f in entry["fields"]}


def test_identical_plans_have_no_change():
    diff = diff_plans(_plan(), _plan())
    assert diff["changed"] is False
    assert diff["dags"] == {"added": [], "removed": [], "changed": []}
    assert diff["errors"] == {"added": [], "resolved": []} and diff["fields"] == []
    assert "no change to Airflow" in format_text(diff)


def test_reordering_dags_tasks_and_sets_is_no_change():
    new = _plan()
    new["dags"].reverse()
    join = _dag(new, JOIN)
    join["tasks"].reverse()
    join["writes"].reverse()
    assert diff_plans(_plan(), new)["changed"] is False


def test_added_and_removed_dag():
    new = _plan()
    new["dags"] = [d for d in new["dags"] if d["dag_id"] != TEAM]
    added = copy.deepcopy(_dag(new, JOIN))
    added.update(dag_id="chronon.join_backfill.risk.txn_fraud.v2", source="production/joins/risk/txn_fraud.v2")
    new["dags"].append(added)
    diff = diff_plans(_plan(), new)
    assert diff["changed"] is True
    assert [d["dag_id"] for d in diff["dags"]["added"]] == ["chronon.join_backfill.risk.txn_fraud.v2"]
    assert diff["dags"]["added"][0] == added  # the whole DAG, as the plan has it
    assert [d["dag_id"] for d in diff["dags"]["removed"]] == [TEAM]
    assert diff["dags"]["changed"] == []
    text = format_text(diff, "old", "new")
    assert "+ chronon.join_backfill.risk.txn_fraud.v2  [join_backfill]" in text
    assert "    + raw_join (raw_join) <- wait_for_payments.card_transactions_ds" in text
    assert f"- {TEAM}  [metadata_upload]" in text


def test_schedule_and_team_change():
    new = _plan()
    _dag(new, JOIN).update(schedule="30 2 * * *", team="payments")
    _dag(new, TEAM)["schedule"] = None
    diff = diff_plans(_plan(), new)
    fields = _fields(_changed_dag(diff, JOIN))
    assert list(fields) == ["schedule", "team"]  # sorted, nothing else
    assert fields["schedule"] == {"field": "schedule", "old": "@daily", "new": "30 2 * * *"}
    assert _fields(_changed_dag(diff, TEAM))["schedule"] == {"field": "schedule", "old": "*/20 * * * *", "new": None}
    assert [d["dag_id"] for d in diff["dags"]["changed"]] == sorted([JOIN, TEAM])
    text = format_text(diff)
    assert f"~ {JOIN}  [join_backfill]\n    ~ schedule: @daily -> \"30 2 * * *\"\n    ~ team: risk -> payments" in text


def test_reads_and_writes_as_sets():
    new = _plan()
    _dag(new, JOIN)["reads"] = ["payments.card_transactions", "payments.merchants"]
    _dag(new, JOIN)["writes"] = ["risk_features.risk_txn_fraud_v1"]
    fields = _fields(_changed_dag(diff_plans(_plan(), new), JOIN))
    assert fields["reads"]["added"] == ["payments.merchants"] and fields["reads"]["removed"] == []
    assert fields["writes"]["removed"] == ["risk_features.risk_txn_fraud_v1_pre_mt"]


def test_argv_change_shows_the_changed_options():
    new = _plan()
    argv = _argv("4G")
    argv[argv.index("--name"):argv.index("--name") + 2] = []
    argv[3:3] = ["--conf", "spark.executor.instances=4"]
    _task(new, JOIN, "raw_join")["argv"] = argv
    diff = diff_plans(_plan(), new)
    (task,) = _changed_dag(diff, JOIN)["tasks"]["changed"]
    assert (task["task_id"], task["kind"]) == ("raw_join", "raw_join")
    (change,) = task["fields"]
    assert change["field"] == "argv" and change["old"] == _argv() and change["new"] == argv
    assert change["edits"] == [
        {"op": "added", "value": ["--conf", "spark.executor.instances=4"]},
        {"op": "changed", "option": "--conf spark.yarn.appMasterEnv.DRIVER_MEMORY", "old": "2G", "new": "4G"},
        {"op": "removed", "value": ["--name", "chronon_joins_backfill_risk_txn_fraud_v1"]},
    ]
    text = format_text(diff)
    assert ("    ~ task raw_join (raw_join)\n"
            "        ~ argv:\n"
            "            + --conf spark.executor.instances=4\n"
            "            ~ --conf spark.yarn.appMasterEnv.DRIVER_MEMORY: 2G -> 4G\n"
            "            - --name chronon_joins_backfill_risk_txn_fraud_v1\n") in text


def test_list_edits_of_positional_elements_and_flag_values():
    assert list_edits(["a", "b", "c"], ["a", "c", "d"]) == [
        {"op": "removed", "value": ["b"]}, {"op": "added", "value": ["d"]}]
    assert list_edits(["run", "--mode=fast"], ["run", "--mode=slow"]) == [
        {"op": "changed", "option": "--mode", "old": "fast", "new": "slow"}]
    assert list_edits(["--name", "x"], ["--name", "y"]) == [
        {"op": "changed", "option": "--name", "old": "x", "new": "y"}]


def test_partition_change_names_each_field():
    new = _plan()
    partition = _task(new, JOIN, "wait_for_payments.card_transactions_ds")["partition"]
    partition.update(lag=1, end="2025-01-01", subpartitions={"hr": "00:00"})
    (task,) = _changed_dag(diff_plans(_plan(), new), JOIN)["tasks"]["changed"]
    assert task["fields"] == [
        {"field": "partition.end", "old": None, "new": "2025-01-01"},
        {"field": "partition.lag", "old": 0, "new": 1},
        {"field": "partition.subpartitions.hr", "new": "00:00"},  # absent before: no "old"
    ]
    text = format_text(diff_plans(_plan(), new))
    assert "        ~ partition.lag: 0 -> 1\n" in text and "        + partition.subpartitions.hr: 00:00\n" in text


def test_task_added_removed_and_upstream_changed():
    new = _plan()
    join = _dag(new, JOIN)
    join["tasks"] = [t for t in join["tasks"] if t["task_id"] != "wait_for_payments.card_transactions_ds"]
    wait = {"task_id": "wait_for_payments.card_transactions_ds_lag1", "kind": "wait_for_partition", "upstream": [],
            "partition": {"table": "payments.card_transactions", "column": "ds", "subpartitions": {}, "lag": 1,
                          "start": None, "end": None}}
    join["tasks"].insert(0, wait)
    _task(new, JOIN, "raw_join")["upstream"] = [wait["task_id"]]
    diff = diff_plans(_plan(), new)
    tasks = _changed_dag(diff, JOIN)["tasks"]
    assert [t["task_id"] for t in tasks["added"]] == [wait["task_id"]]
    assert [t["task_id"] for t in tasks["removed"]] == ["wait_for_payments.card_transactions_ds"]
    (raw,) = tasks["changed"]
    assert raw["fields"] == [{"field": "upstream", "old": ["wait_for_payments.card_transactions_ds"],
                              "new": [wait["task_id"]], "added": [wait["task_id"]],
                              "removed": ["wait_for_payments.card_transactions_ds"]}]
    text = format_text(diff)
    assert "    + task wait_for_payments.card_transactions_ds_lag1 (wait_for_partition)\n" in text
    assert "partition: table=payments.card_transactions column=ds subpartitions={} lag=1" in text
    assert "    - task wait_for_payments.card_transactions_ds (wait_for_partition)\n" in text
    assert ("        ~ upstream: +wait_for_payments.card_transactions_ds_lag1 "
            "-wait_for_payments.card_transactions_ds") in text


def test_unknown_kinds_and_fields_are_compared_generically():
    old, new = _plan(), _plan()
    for plan, value in ((old, {"retries": 1, "pool": "a"}), (new, {"retries": 2, "pool": "a", "sla": "1h"})):
        plan["dags"].append({"dag_id": "chronon.some_new_kind.x", "kind": "some_new_kind", "team": "risk",
                             "schedule": None, "source": "production/x", "reads": [], "writes": [],
                             "tasks": [{"task_id": "t", "kind": "future_task", "upstream": [], "options": value}]})
    _dag(new, TEAM)["owners"] = ["a@example.com"]  # a DAG field the contract may grow
    new["generated_by"] = "chronon-airflow"  # a top-level field too
    diff = diff_plans(old, new)
    (task,) = _changed_dag(diff, "chronon.some_new_kind.x")["tasks"]["changed"]
    assert task["fields"] == [{"field": "options.retries", "old": 1, "new": 2},
                              {"field": "options.sla", "new": "1h"}]
    assert _fields(_changed_dag(diff, TEAM))["owners"] == {"field": "owners", "new": ["a@example.com"]}
    assert diff["fields"] == [{"field": "generated_by", "new": "chronon-airflow"}]


def test_errors_resolved_and_added_warnings_too():
    err = {"path": "production/joins/risk/txn_fraud.v1", "field": "metaData.name", "message": "mismatch"}
    err2 = {"path": "production/group_bys/risk/a.v1", "field": "", "message": "invalid JSON"}
    warn = {"path": "teams.json", "field": "default.common_env.CHRONON_ONLINE_CLASS", "message": "placeholder"}
    old, new = _plan(), _plan()
    old["errors"] = [err, err2]
    new["errors"] = [err2]
    new["warnings"] = [warn]
    diff = diff_plans(old, new)
    assert diff["changed"] is True
    assert diff["errors"] == {"added": [], "resolved": [err]}
    assert diff["warnings"] == {"added": [warn], "resolved": []}
    assert diff["new_errors"] == 1
    text = format_text(diff)
    assert "config errors resolved:\n- production/joins/risk/txn_fraud.v1: metaData.name: mismatch" in text
    assert "warnings added:\n+ teams.json: default.common_env.CHRONON_ONLINE_CLASS: placeholder" in text
    # All resolved: nothing left on the new side.
    assert diff_plans(old, _plan())["errors"]["resolved"] == sorted([err, err2], key=lambda e: e["path"])
    assert diff_plans(old, _plan())["new_errors"] == 0


def test_repo_root_is_replaced_so_copies_compare_equal():
    old, new = _plan(), _plan()
    _task(new, JOIN, "raw_join")["argv"] = _argv(root="/tmp/other/copy")
    assert diff_plans(old, new)["changed"] is True
    a, b = replace_root(old, ROOT), replace_root(new, "/tmp/other/copy/")
    assert diff_plans(a, b)["changed"] is False
    argv = _task(a, JOIN, "raw_join")["argv"]
    assert "<repo>/production/joins/risk/txn_fraud.v1" in argv
    assert "spark.yarn.appMasterEnv.CHRONON_CONF_PATH=<repo>/production/joins/risk/txn_fraud.v1" in argv
    # Only whole path components: a sibling folder sharing the prefix is left alone.
    assert replace_root(["/srv/repo2/x", "/x/srv/repo/y", "/srv/repo"], ROOT) == ["/srv/repo2/x", "/x/srv/repo/y",
                                                                                "<repo>"]


def test_output_is_deterministic_and_json():
    new = _plan()
    _dag(new, JOIN)["schedule"] = "@hourly"
    _task(new, JOIN, "raw_join")["argv"] = _argv("8G")
    new["dags"].reverse()
    first = diff_plans(_plan(), new)
    again = diff_plans(_plan(), copy.deepcopy(new))
    assert json.dumps(first) == json.dumps(again)
    assert format_text(first) == format_text(again)
