"""Alerts that say what to do: the one e-mail builder (plain text + HTML), the recovery action per
task kind, the failure notifier, the config-errors dedupe, the landing deadline and the Spark
application watcher."""
from __future__ import annotations

import asyncio
import email
import email.policy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from chronon_airflow.notifications.email import Email, send
from chronon_airflow.notifications.failure import ChrononFailureNotifier, recovery_action
from chronon_airflow.plan import model as pm


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    """An SMTP sink on loopback and connection ``smtp_test`` pointing at it; yields the mail folder."""
    from chronon_demo.mail import start_sink
    from tests.support.net import free_port

    port = free_port()
    sink = start_sink("127.0.0.1", port, tmp_path / "mail")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 0}}))
    yield tmp_path / "mail"
    sink.stop()


def _parts(mail_dir: Path) -> list[dict[str, str]]:
    out = []
    for path in sorted(mail_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parts = {p.get_content_type(): p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"}
        out.append({"subject": str(msg["Subject"]), "to": str(msg["To"]), "type": msg.get_content_type(), **parts})
    return out


def test_one_builder_plain_text_and_escaped_html(smtp):
    m = Email(subject="[chronon] x: failed", title="Chronon task failed",
              rows=[("Config", "<script>alert(1)</script>"), ("Error", "boom & bust")],
              action="Clear the task.", links=[("Task log", "http://user:pw@127.0.0.1:8080/log?x=1"),
                                               ("Evil", "javascript:alert(1)")],
              details=["a <b>bold</b> claim"])
    text, page = m.text(), m.html()
    assert "What to do" in text and "Clear the task." in text and "Config: <script>" in text
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="http://127.0.0.1:8080/log?x=1"' in page and "pw@" not in page  # user info stripped
    assert 'href="javascript' not in page and "javascript:alert(1)" in page  # shown, never linked
    assert send(m, ["team@example.com", "not an address"], smtp_conn_id="smtp_test", from_email="a@b.c") == \
        ["team@example.com"]
    (mail,) = _parts(smtp)
    assert mail["type"] == "multipart/alternative"
    assert "What to do" in mail["text/plain"] and "&lt;script&gt;" in mail["text/html"]
    assert mail["to"] == "team@example.com"


def _ti(task_id="wait_for_batch_inference", try_number=2):
    return SimpleNamespace(dag_id="chronon.join_backfill.j", task_id=task_id, run_id="manual__1",
                           try_number=try_number, log_url="http://127.0.0.1:1/log")


def test_failure_email_names_the_links_and_the_recovery_action(smtp):
    task = SimpleNamespace(retries=1, chronon_links=lambda ctx: [("Model backend job job-1", "http://b/jobs/job-1")])
    context = {"ti": _ti(), "task": task, "params": {"start_ds": "2024-04-20", "end_ds": "2024-04-21"},
               "exception": RuntimeError("model batch job job-1 ... ended FAILED: injected failure"),
               "dag_run": SimpleNamespace(run_type="manual")}
    notifier = ChrononFailureNotifier(recipients=["risk-ml@example.com"], conf_name="risk.txn_fraud.v1",
                                      smtp_conn_id="smtp_test", task_kind=pm.WAIT_FOR_BATCH_INFERENCE,
                                      source="production/joins/risk/txn_fraud.v1")
    notifier.notify(context)
    (mail,) = _parts(smtp)
    assert mail["subject"] == "[chronon] risk.txn_fraud.v1: task wait_for_batch_inference failed for " \
                              "2024-04-20..2024-04-21"
    text = mail["text/plain"]
    for expected in ("Try:", "2 of 2", "injected failure", "Model backend job job-1: http://b/jobs/job-1",
                     "Task log: http://127.0.0.1:1/log", "it submits a new job",
                     "clear task wait_for_batch_inference of run manual__1"):
        assert expected in text, (expected, text)
    assert 'href="http://b/jobs/job-1"' in mail["text/html"]


@pytest.mark.parametrize("kind, error, expected", [
    (pm.CHECK_RANGE, "start_ds 2024-04-22 is after end_ds 2024-04-20", "Trigger the DAG again with a valid range"),
    (pm.CHECK_RANGE, "were given to an Airflow backfill", "Create the backfill again without start_ds/end_ds"),
    (pm.WAIT_FOR_BATCH_INFERENCE, "did not end within 60s; it may still be running", "re-attaches to that job"),
    (pm.WAIT_FOR_PARTITION, "partitions missing", "Once the upstream job has written them"),
    (pm.RAW_JOIN, "exit code 1", "Spark application's log"),
    (pm.REGISTER_MODEL, "model m rejected by backend", "fix it in production/joins/x"),
    (pm.CONFIG_ERROR_TASK, "bad json", "Fix the file in production/joins/x"),
    (None, "boom", "Fix the cause shown in the log"),
])
def test_recovery_action_per_task_kind(kind, error, expected):
    assert expected in recovery_action(kind, "t", "r", error, "production/joins/x")


def test_config_errors_email_once_per_change_of_the_errors():
    from airflow.sdk.exceptions import AirflowFailException

    from chronon_airflow.operators.config_errors import ConfigErrorOperator, fingerprint

    errors = [{"path": "production/joins/a/b", "field": "metaData.name", "message": "bad"}]
    stored: dict = {}

    class TI:
        task_id = "production_joins_a_b"

        def xcom_pull(self, **kw):
            return stored.get(kw["key"])

        def xcom_push(self, key, value):
            stored[key] = value

    def run(errs):
        op = ConfigErrorOperator(task_id="production_joins_a_b", errors=errs)
        with pytest.raises(AirflowFailException):
            op.execute({"ti": TI()})
        return op.should_alert({})

    assert run(errors) is True  # first report
    assert run(errors) is False  # same errors: no second e-mail
    assert run(errors + [{"path": "production/joins/a/b", "field": "x", "message": "y"}]) is True
    assert fingerprint(list(reversed(errors + errors))) == fingerprint(errors + errors)


def test_landing_deadline_alerts_only_scheduled_runs(smtp):
    from chronon_airflow.notifications.deadline import landing_deadline_missed

    kwargs = {"recipients": ["search-ml@example.com"], "conf_name": "search.query_relevance.v1",
              "output_table": "search_features.search_query_relevance_v1", "hours": 6,
              "smtp_conn_id": "smtp_test", "from_email": "chronon@localhost"}
    run = {"dag_id": "chronon.join_backfill.search.query_relevance.v1", "dag_run_id": "scheduled__2024-04-20",
           "run_type": "backfill", "state": "running", "data_interval_start": "2024-04-20T00:00:00+00:00"}
    assert asyncio.run(landing_deadline_missed(context={"dag_run": run}, **kwargs)).startswith("ignored")
    run["run_type"] = "scheduled"
    assert asyncio.run(landing_deadline_missed(context={"dag_run": run, "deadline": {"deadline_time": "t"}},
                                               **kwargs)) == "e-mailed 1 recipients"
    (mail,) = _parts(smtp)
    assert mail["subject"] == ("[chronon] search.query_relevance.v1: search_features.search_query_relevance_v1 "
                               "not landed for ds 2024-04-20 6 h after its interval")
    assert "landing_deadline_hours" in mail["text/plain"]


def test_spark_application_watcher_reads_the_submit_log():
    from chronon_airflow.links.spark import SparkApplicationWatcher

    yarn = SparkApplicationWatcher()
    for line in ["INFO Client: Submitting application application_1700000000000_0042 to ResourceManager",
                 "\t tracking URL: http://rm:8088/proxy/application_1700000000000_0042/"]:
        yarn.feed(line)
    assert yarn.app_id == "application_1700000000000_0042"
    assert yarn.url() == "http://rm:8088/proxy/application_1700000000000_0042/"

    standalone = SparkApplicationWatcher()
    lines = list(standalone.watch(iter([
        b"24/04/20 INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20240420101500-0003",
        "24/04/20 INFO SparkUI: Bound SparkUI to 0.0.0.0, and started at http://10.0.0.5:4040"])))
    assert len(lines) == 2  # the provider still sees every line
    assert standalone.app_id == "app-20240420101500-0003" and standalone.url() == "http://10.0.0.5:4040"

    no_ui = SparkApplicationWatcher()
    no_ui.feed("INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20240420101500-0004")
    assert no_ui.url() == ""
    assert no_ui.url("http://127.0.0.1:8082/app/?appId={app_id}") == \
        "http://127.0.0.1:8082/app/?appId=app-20240420101500-0004"
    assert no_ui.url("javascript:{app_id}") == ""


def test_the_spark_operator_declares_the_link():
    from chronon_airflow.links.spark import SparkApplicationLink
    from chronon_airflow.operators.chronon_spark import ChrononSparkSubmitOperator

    assert any(isinstance(link, SparkApplicationLink) for link in ChrononSparkSubmitOperator.operator_extra_links)
    op = SimpleNamespace(spark_application_url="http://10.0.0.5:4040")
    assert SparkApplicationLink().get_link(op, ti_key=None) == "http://10.0.0.5:4040"
