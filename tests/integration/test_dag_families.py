"""The generated DAGs run for real inside ``dag.test()``: the whole per-join DAG against the
reference backend and the local engine, the metadata upload with a partial failure and its
e-mails (a real SMTP server on loopback), and an asset event's range reaching the chained GroupBy."""
from __future__ import annotations

import email
import importlib.util
import json
import os
import shutil
import threading
from email.policy import default as default_policy
from pathlib import Path

import pandas as pd
import pytest

from chronon_airflow import warehouse  # noqa: E402
from tests.support.backend import CONN_ENV, start_backend  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.paths import PROJECT_ROOT  # noqa: E402

QR_DAG = "chronon.join_backfill.search.query_relevance.v1"
UPLOAD_DAG = "chronon.group_by_upload.search.query_embedding_stats.v1"
TEAM_DAG = "chronon.metadata_upload.search"


class Mailbox:
    """An aiosmtpd server on a free loopback port that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.content, policy=default_policy)
                msg["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
                with outer.lock:
                    outer.messages.append(msg)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def bodies(self) -> list[tuple[str, str, str]]:
        with self.lock:
            out = []
            for m in self.messages:
                part = m.get_body(preferencelist=("html", "plain"))
                out.append((str(m["Subject"]), m["X-Rcpt-To"], part.get_content() if part else ""))
            return out

    def stop(self):
        self.controller.stop()


@pytest.fixture(scope="module")
def mailbox():
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """configs/ plus a second search join whose model has no artifact: the backend rejects it."""
    root = tmp_path_factory.mktemp("repo") / "configs"
    shutil.copytree(PROJECT_ROOT / "configs", root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    src = root / "production/joins/search/query_relevance.v1"
    data = json.loads(src.read_text())
    data["metaData"]["name"] = "search.query_relevance.v2"
    data["metaData"]["customJson"] = json.dumps({"owners": ["qr-owner@example.com"]})
    data["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]["model_version"] = "99"
    (root / "production/joins/search/query_relevance.v2").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory, repo, mailbox, airflow_db):
    base = tmp_path_factory.mktemp("stack")
    root = base / "warehouse"
    from chronon_local_engine import sample_data

    sample_data.generate(root, "2024-03-25", "2024-04-02", seed=5)
    backend = start_backend(base / "backend", free_port(), root)
    env = {
        "AIRFLOW__CHRONON__REPO_PATH": str(repo),
        "AIRFLOW__CHRONON__WAREHOUSE": str(root),
        "AIRFLOW__CHRONON__SENSOR_POKE_INTERVAL": "1",
        "AIRFLOW__CHRONON__BATCH_JOB_POLL_INTERVAL": "1",
        # dag.test() of Airflow 3.3.2 does not store a DAG's Deadline alerts, and the successful
        # run's update_state then fails looking them up: no landing deadline under dag.test().
        "AIRFLOW__CHRONON__LANDING_DEADLINE_HOURS": "0",
        CONN_ENV: backend.connection(),
        "AIRFLOW_CONN_CHRONON_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": mailbox.port,
                                                 "extra": {"disable_tls": True, "disable_ssl": True}}),
        "AIRFLOW__CHRONON__EMAIL_FROM": "chronon-airflow@example.com",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # dag.test() finds DAGs through the bundle: the DAG file must sit in the (test) DAGs folder.
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    dag_file = dags / "chronon_dags_under_test.py"
    shutil.copy(PROJECT_ROOT / "dags" / "chronon_dags.py", dag_file)
    spec = importlib.util.spec_from_file_location("chronon_dags_under_test", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield {"dags": vars(module), "warehouse": root, "backend": backend}
    dag_file.unlink()
    backend.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.spark
def test_whole_join_dag_runs_against_backend_and_local_engine(stack):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    dag = stack["dags"][QR_DAG]
    run = dag.test(run_conf={"start_ds": "2024-04-01", "end_ds": "2024-04-02"})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    # Everything succeeds but the stats step, which the local engine does not have: it skips.
    assert states.pop("stats_summary") == "skipped"
    assert set(states.values()) == {"success"}, states
    root = stack["warehouse"]
    pre_mt = "search_features.search_query_relevance_v1_pre_mt"
    out = "search_features.search_query_relevance_v1"
    assert warehouse.list_partitions(root, pre_mt) == ["2024-04-01", "2024-04-02"]
    assert warehouse.list_partitions(root, out) == ["2024-04-01", "2024-04-02"]
    for ds in ("2024-04-01", "2024-04-02"):
        raw = pd.read_parquet(warehouse.partition_path(root, pre_mt, ds))
        final = pd.read_parquet(warehouse.partition_path(root, out, ds))
        assert len(final) == len(raw) > 0
        assert {"user_id", "item_id", "item_dwell_per_click_7d", "qe_query_embedding"} <= set(final.columns)
        assert final.qe_query_embedding.map(len).eq(8).all()
    # The outlet's asset event carries the written range: the chained GroupBy reads it.
    with create_session() as session:
        events = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                  .filter(AssetModel.name == out, AssetEvent.source_run_id == run.run_id).all())
        extras = [e.extra for e in events]
    assert len(extras) == 1 and {k: extras[0][k] for k in ("start_ds", "end_ds")} == \
        {"start_ds": "2024-04-01", "end_ds": "2024-04-02"}
    stack["asset_extra"] = extras[0]


@pytest.mark.spark
def test_chained_group_by_takes_its_partitions_from_the_asset_event(stack):
    from types import SimpleNamespace

    extra = stack.get("asset_extra") or pytest.fail("the join DAG test must run first")
    dag = stack["dags"][UPLOAD_DAG]
    upload = dag.get_task("group_by_upload")
    wait = dag.get_task("wait_for_search_features.search_query_relevance_v1_ds")  # its own compiled dependency
    # A logical date far from the partitions: the range must come from the event, not from it.
    import datetime as dt
    when = dt.datetime(2031, 5, 5, tzinfo=dt.timezone.utc)
    context = {"params": {}, "data_interval_start": when, "logical_date": when,
               "triggering_asset_events": {"asset": [SimpleNamespace(extra=extra)]}}
    from chronon_airflow.partitions import task_range

    for task in (upload, wait):
        # What both do first when they run: the generated tasks are given no dates.
        assert (task.start_ds, task.end_ds) == (None, None)
        task.start_ds, task.end_ds = task_range(task.start_ds, task.end_ds, context)
        assert (task.start_ds, task.end_ds) == ("2024-04-01", "2024-04-02")
    assert wait.poke(context) is True  # the parent's output partitions exist
    argv_end = upload.job.with_dates(upload.start_ds, upload.end_ds).application_args
    assert argv_end[argv_end.index("--end-date") + 1] == "2024-04-02"


def test_metadata_upload_partial_failure_notifies_owners(stack, mailbox):
    dag = stack["dags"][TEAM_DAG]
    run = dag.test()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    # Chronon's own metadata-upload needs the jar: with the local engine it skips.
    assert states == {"register_team_model_transforms": "failed", "metadata_upload": "skipped"}
    mails = mailbox.bodies()
    per_join = [m for m in mails if "model registration failed" in m[0]]
    assert len(per_join) == 1
    subject, rcpt, body = per_join[0]
    assert "search.query_relevance.v2" in subject
    assert "qr-owner@example.com" in rcpt and "search-ml@example.com" in rcpt
    assert "query_encoder" in body and "99" in body  # the backend's message names the missing model
    failure = [m for m in mails if "failed for" in m[0] and "register_team_model_transforms" in m[0]]
    assert len(failure) == 1, [m[0] for m in mails]
    subject, rcpt, body = failure[0]
    assert rcpt == "search-ml@example.com"
    assert "search.query_relevance.v2" in body and "/dags/chronon.metadata_upload.search/runs/" in body
    # Only v2 failed: v1 was registered in the same run despite it.
    assert "registration failed for 1 of 2 joins" in body


def test_a_broken_file_is_e_mailed_once_across_runs(repo, stack, mailbox):
    """The config-errors task e-mails a broken file's team on its first failing run only: later runs
    (scheduled or manual, however many came before) find the same errors already reported."""
    import datetime as dt

    from chronon_airflow.render import build_dags

    broken = repo / "production/joins/search/broken_join.v1"
    broken.write_text("{not json")
    try:
        dag = build_dags()["chronon.config_errors"]
        for hour, minute in ((13, 0), (14, 0), (14, 10)):
            run = dag.test(logical_date=dt.datetime(2026, 12, 2, hour, minute, tzinfo=dt.timezone.utc))
            assert run.state == "failed"
    finally:
        broken.unlink()
    sent = [subject for subject, _, _ in mailbox.bodies() if "broken config" in subject]
    assert sent == ["[chronon] broken config production/joins/search/broken_join.v1: fix it (chronon-airflow validate)"]
