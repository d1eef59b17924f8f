"""OpenLineage: every Chronon task reports the tables the plan says it reads and writes, through the
openlineage provider's own extraction (``ExtractorManager``, what its listener calls when a task
starts and ends) and, once, through a real emission with the ``file`` transport in ``dag.test()``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.paths import PROJECT_ROOT

pytest.importorskip("airflow.providers.openlineage", reason="needs the lineage extra")

JOIN = "chronon.join_backfill.search.query_relevance.v1"
UPLOAD = "chronon.group_by_upload.search.query_embedding_stats.v1"
STAGING = "chronon.staging_query.search.click_events_enriched.v1"
FED_JOIN = "chronon.join_backfill.search.enriched_clicks.v1"  # reads the staging query's output

SOURCES = ["search_data.search_events", "search_data.item_clicks"]
PRE_MT = "search_features.search_query_relevance_v1_pre_mt"
OUTPUT = "search_features.search_query_relevance_v1"
UPLOADED = "search_features.search_query_embedding_stats_v1_upload"
STAGED = "search_features.search_click_events_enriched_v1"


@pytest.fixture
def wh(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "warehouse"
    monkeypatch.setenv("AIRFLOW__CHRONON__WAREHOUSE", str(root))
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", "off")
    monkeypatch.delenv("AIRFLOW__CHRONON__CATALOG", raising=False)
    monkeypatch.delenv("AIRFLOW__CHRONON__LINEAGE_NAMESPACE", raising=False)
    return root


def dagbag(monkeypatch, repo: Path):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(repo))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag


def extract(task, state) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """What the provider's listener would put in the task's START (running) or COMPLETE event."""
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    md = ExtractorManager().extract_metadata(SimpleNamespace(run_id="manual__lineage"), task, state, None)
    return [(d.namespace, d.name) for d in md.inputs], [(d.namespace, d.name) for d in md.outputs]


def local(wh: Path, *tables: str) -> list[tuple[str, str]]:
    """OpenLineage's local file system naming (namespace ``file``, the path as the name)."""
    from openlineage.client.naming.dataset import LocalFileSystem

    from chronon_airflow import warehouse

    out = []
    for t in tables:
        naming = LocalFileSystem(path=str(warehouse.table_path(wh, t)))
        out.append((naming.get_namespace(), naming.get_name()))
    return out


def test_every_task_carries_the_plans_tables(monkeypatch, configs_repo, wh):
    from chronon_airflow.plan.load import load_plan

    bag = dagbag(monkeypatch, configs_repo)
    _, plan = load_plan(configs_repo)
    assert {d.dag_id for d in plan.dags} == set(bag.dags)
    with_tables = 0
    for planned in plan.dags:
        dag = bag.dags[planned.dag_id]
        for t in planned.tasks:
            op = dag.get_task(t.task_id)
            # A task that skips in this deployment (stats-summary on the local engine) touches nothing.
            want = ((), ()) if t.skip_reason else (t.reads, t.writes)
            assert (getattr(op, "chronon_inputs", ()), getattr(op, "chronon_outputs", ())) == want, t.task_id
            with_tables += bool(want[0] or want[1])
    assert with_tables > 30


def test_provider_extraction_chains_sources_join_model_output_upload(monkeypatch, configs_repo, wh):
    from airflow.utils.state import TaskInstanceState

    from chronon_airflow.plan.load import load_plan

    bag = dagbag(monkeypatch, configs_repo)
    _, plan = load_plan(configs_repo)
    seen: dict[tuple[str, str], tuple[list, list]] = {}
    for dag_id in (JOIN, UPLOAD, STAGING, FED_JOIN):
        for t in plan.dag(dag_id).tasks:
            task = bag.dags[dag_id].get_task(t.task_id)
            start = extract(task, TaskInstanceState.RUNNING)
            complete = extract(task, TaskInstanceState.SUCCESS)
            failed = extract(task, TaskInstanceState.FAILED)
            assert start == complete == failed, t.task_id
            if t.skip_reason or not (t.reads or t.writes):
                assert start == ([], []), t.task_id
                continue
            assert start == (local(wh, *t.reads), local(wh, *t.writes)), t.task_id
            seen[dag_id, t.task_id] = start

    # source tables -> raw join -> <output>_pre_mt -> model batch job -> output -> GroupBy upload
    assert seen[JOIN, "raw_join"] == (local(wh, *SOURCES), local(wh, PRE_MT))
    for source in SOURCES:
        wait = f"wait_for_{source}_ds"
        assert seen[JOIN, wait] == (local(wh, source), [])
    # The model batch job (submitted and waited for by one task) reads the raw join, writes the output.
    assert seen[JOIN, "wait_for_batch_inference"] == (local(wh, PRE_MT), local(wh, OUTPUT))
    assert [task for (dag_id, task), (_, outs) in seen.items() if local(wh, OUTPUT)[0] in outs] == \
        ["wait_for_batch_inference"]
    assert seen[UPLOAD, f"wait_for_{OUTPUT}_ds"] == (local(wh, OUTPUT), [])
    assert seen[UPLOAD, "group_by_upload"] == (local(wh, OUTPUT), local(wh, UPLOADED))
    # A staging query's output is a dataset the join it feeds reads.
    assert seen[STAGING, "staging_query"] == (local(wh, "search_data.item_clicks", "search_data.items_snapshot"),
                                              local(wh, STAGED))
    assert local(wh, STAGED)[0] in seen[FED_JOIN, "join"][0]


def test_hive_names_and_the_namespace_setting(monkeypatch, configs_repo, wh):
    from airflow.utils.state import TaskInstanceState
    from openlineage.client.naming.dataset import Hive

    bag = dagbag(monkeypatch, configs_repo)
    upload = bag.dags[UPLOAD].get_task("group_by_upload")
    monkeypatch.setenv("AIRFLOW__CHRONON__CATALOG", "hive")
    monkeypatch.setenv("AIRFLOW__CHRONON__METASTORE_CONN_ID", "lineage_metastore")
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_METASTORE", json.dumps(
        {"conn_type": "hive_metastore", "host": "metastore-1.prod,metastore-2.prod", "port": 9084}))

    def hive(table: str) -> tuple[str, str]:
        db, name = table.split(".")
        naming = Hive(host="metastore-1.prod", port="9084", database=db, table=name)
        return naming.get_namespace(), naming.get_name()

    assert extract(upload, TaskInstanceState.RUNNING) == ([hive(OUTPUT)], [hive(UPLOADED)])
    # No port on the connection: the metastore's default.
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_METASTORE", json.dumps({"conn_type": "hive_metastore",
                                                                     "host": "metastore.prod"}))
    assert extract(upload, TaskInstanceState.SUCCESS)[1] == [("hive://metastore.prod:9083", UPLOADED)]
    # The setting wins over the connection (and stands in for one a worker cannot read).
    monkeypatch.setenv("AIRFLOW__CHRONON__LINEAGE_NAMESPACE", "hive://thrift.prod:9083")
    monkeypatch.delenv("AIRFLOW_CONN_LINEAGE_METASTORE")
    assert extract(upload, TaskInstanceState.SUCCESS) == ([("hive://thrift.prod:9083", OUTPUT)],
                                                          [("hive://thrift.prod:9083", UPLOADED)])
    # Without either, still the tables, in namespace "hive".
    monkeypatch.delenv("AIRFLOW__CHRONON__LINEAGE_NAMESPACE")
    assert extract(upload, TaskInstanceState.SUCCESS) == ([("hive", OUTPUT)], [("hive", UPLOADED)])

    from chronon_airflow.lineage import dataset_names

    # A bare table is in Hive's default schema; on the local warehouse, in its default/ folder.
    monkeypatch.setenv("AIRFLOW__CHRONON__LINEAGE_NAMESPACE", "hive://thrift.prod:9083")
    assert dataset_names(["bare_table"]) == [("hive://thrift.prod:9083", "default.bare_table")]
    monkeypatch.setenv("AIRFLOW__CHRONON__CATALOG", "local")
    monkeypatch.delenv("AIRFLOW__CHRONON__LINEAGE_NAMESPACE")
    assert dataset_names(["bare_table"]) == [("file", str(wh / "default" / "bare_table"))]


def test_openlineage_is_imported_only_when_the_provider_asks():
    """The provider is an extra: no module of the product imports OpenLineage at import time, only
    inside the methods the provider calls (tests/integration/test_packaging.py loads the DAGs in an
    install without it)."""
    import ast

    package = PROJECT_ROOT / "chronon_airflow"
    lazy = 0
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))

        def walk(node, in_function: bool, in_type_checking: bool, path=path):
            nonlocal lazy
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    names = [child.module or ""] if isinstance(child, ast.ImportFrom) else [a.name for a in child.names]
                    if any("openlineage" in n for n in names):
                        assert in_function or in_type_checking, f"{path}:{child.lineno} imports OpenLineage eagerly"
                        lazy += in_function
                is_tc = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
                walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
                     in_type_checking or is_tc)

        walk(tree, False, False)
    assert lazy >= 2  # OperatorLineage and Dataset, in chronon_airflow.lineage


RUN = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("chronon_dags_lineage_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = vars(module)[sys.argv[2]]
# The staging query's Spark job is marked done: its two partition waits run for real.
run = dag.test(run_conf={"start_ds": sys.argv[3], "end_ds": sys.argv[3]}, mark_success_pattern="staging_query")
print("STATES", json.dumps({ti.task_id: ti.state for ti in run.get_task_instances()}))
"""


def test_a_dag_test_run_emits_the_tables_through_the_file_transport(configs_repo, wh, airflow_db, tmp_path):
    from chronon_airflow import warehouse

    ds = "2024-04-01"
    for table in ("search_data.item_clicks", "search_data.items_snapshot"):
        staging = warehouse.staging_path(wh, table, ds)
        (staging / "part-0.parquet").write_bytes(b"")
        warehouse.commit_partition(wh, table, ds, staging)
    events_file = tmp_path / "openlineage.jsonl"
    # dag.test() looks the DAG up in the DAGs folder's bundle: the DAG file must sit there.
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if Path(os.environ["AIRFLOW_HOME"]) not in dags.resolve().parents:
        pytest.skip(f"DAGs folder {dags} is not inside the test AIRFLOW_HOME; not writing a DAG file there")
    dags.mkdir(parents=True, exist_ok=True)
    dag_file = dags / "chronon_dags_lineage_test.py"
    shutil.copy(PROJECT_ROOT / "dags" / "chronon_dags.py", dag_file)
    env = {**os.environ,
           "AIRFLOW__CHRONON__REPO_PATH": str(configs_repo),
           "AIRFLOW__CHRONON__WAREHOUSE": str(wh),
           "AIRFLOW__CHRONON__PLAN_CACHE_DIR": "off",
           "AIRFLOW__CHRONON__SENSOR_POKE_INTERVAL": "1",
           "AIRFLOW__CHRONON__SENSOR_TIMEOUT": "120",
           # A fresh process: the provider reads [openlineage] once and only then loads its listener.
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file),
                                                         "append": True}),
           "AIRFLOW__OPENLINEAGE__NAMESPACE": "chronon_test"}
    try:
        out = subprocess.run([sys.executable, "-c", RUN, str(dag_file), STAGING, ds], env=env, capture_output=True,
                             text=True, timeout=600, cwd=PROJECT_ROOT)
    finally:
        dag_file.unlink()
    assert out.returncode == 0, out.stderr[-5000:]
    states = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("STATES "))[7:])
    assert set(states.values()) == {"success"}, states

    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    by_job: dict[str, dict[str, dict]] = {}
    for e in events:
        if e.get("eventType") in ("START", "COMPLETE"):
            by_job.setdefault(e["job"]["name"], {})[e["eventType"]] = e
    for source in ("search_data.item_clicks", "search_data.items_snapshot"):
        job = f"{STAGING}.wait_for_{source.replace('.', '_')}_ds_ds"
        assert set(by_job.get(job, {})) == {"START", "COMPLETE"}, sorted(by_job)
        for e in by_job[job].values():
            assert e["job"]["namespace"] == "chronon_test"
            assert [(d["namespace"], d["name"]) for d in e["inputs"]] == local(wh, source)
            assert e["outputs"] == []
