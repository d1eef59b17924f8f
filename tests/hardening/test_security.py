"""Security: config strings never reach a shell or Jinja; secrets never reach logs, XCom, rendered
templates or the page; the reference backend listens on loopback and refuses oversized requests."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.backend import CONFIGS, CONN_ENV, load_join, query_relevance_rows, start_backend, write_pre_mt
from tests.support.net import free_port

from .corpus import JINJA, JINJA_RENDERED, PWNED_FILES, SECRETS

SHELL_OR_JINJA = ("$(", "`", ";", "|", "&", "{{", "{%", "\n", "<", ">")


# -- config strings never reach a shell or Jinja ---------------------------------------------------

def test_templated_fields_of_every_generated_task_are_only_dates_and_job_ids(corpus):
    seen = set()
    for dag in corpus.bag.dags.values():
        for task in dag.tasks:
            seen.add(type(task).__name__)
            assert set(task.template_fields) <= {"start_ds", "end_ds", "job_id"}, (type(task), task.template_fields)
            for name in task.template_fields:
                # Unset: the run's range is resolved when the task runs (partitions.task_range).
                assert getattr(task, name) is None, (dag.dag_id, task.task_id, name, getattr(task, name))
    # Every operator kind the renderer uses was looked at, including the config-error task.
    assert {"ChrononPartitionSensor", "ChrononSparkSubmitOperator", "RegisterModelOperator",
            "RegisterModelTransformOperator", "ModelBatchInferenceOperator", "ChrononRangeCheckOperator",
            "RegisterTeamModelTransformsOperator", "ConfigErrorOperator"} <= seen


def test_spark_argv_is_a_list_of_plain_elements(corpus):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    from chronon_airflow.exceptions import InvalidRange
    from chronon_airflow.operators.chronon_spark import ChrononSparkSubmitOperator
    from chronon_airflow.spark.job import spark_submit_argv

    tasks = [t for d in corpus.bag.dags.values() for t in d.tasks if isinstance(t, ChrononSparkSubmitOperator)]
    assert len(tasks) >= 10
    for task in tasks:
        argv = spark_submit_argv(task.job.with_dates("2024-01-01", "2024-01-02"))
        assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
        for element in argv:
            assert not any(m in element for m in SHELL_OR_JINJA), (task.dag_id, element)
    # The provider runs that list with Popen and no shell.
    import inspect

    source = inspect.getsource(SparkSubmitHook._build_spark_submit_command) + inspect.getsource(SparkSubmitHook.submit)
    assert "shell=True" not in source
    # Run-time dates must be dates: a rendered value is checked before it becomes an argv element.
    with pytest.raises(InvalidRange):
        tasks[0].job.with_dates("2024-01-01; touch /tmp/x", "2024-01-02")


def test_config_strings_reach_the_backend_verbatim_not_rendered(corpus):
    """A join's params carry Jinja: the operators hold them as data; rendering a task's templates
    leaves them alone (join is not a template field)."""
    dag = corpus.bag.dags["chronon.join_backfill.search.hardening_jinja_params.v1"]
    context = {"params": {"start_ds": "2024-01-01", "end_ds": "2024-01-03"}, "data_interval_start": None,
               "logical_date": None, "triggering_asset_events": {}, "dag_run": None}
    for task_id in ("register_model.query_encoder", "register_model_transform", "wait_for_batch_inference"):
        task = dag.get_task(task_id)
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        held = json.dumps(getattr(task, "join", None) or task.model)
        assert JINJA in held and JINJA_RENDERED not in held
    from chronon_airflow.partitions import task_range

    submit = dag.get_task("wait_for_batch_inference")
    assert task_range(submit.start_ds, submit.end_ds, context) == ("2024-01-01", "2024-01-03")


def test_hostile_dependency_names_never_reach_a_shell(corpus):
    for f in PWNED_FILES:
        assert not f.exists()


# -- secrets -----------------------------------------------------------------------------------

DAG_FILE = """
import datetime as dt
import json
from pathlib import Path

from airflow.sdk import DAG

from chronon_airflow.operators.model_backend import (
    ModelBatchInferenceOperator, RegisterModelOperator, RegisterModelTransformOperator)

join = json.loads(Path({path!r}).read_text())
join["metaData"]["name"] = "search.hardening_secrets.v1"
params = join["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]
params.update({params_json})
model = join["modelTransforms"]["transforms"][0]["model"]

with DAG("hardening_secrets", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False) as dag:
    register = RegisterModelOperator(task_id="register_model", model=model)
    transform = RegisterModelTransformOperator(task_id="register_transform", join=join)
    run = ModelBatchInferenceOperator(task_id="batch_inference", join=join, start_ds="{{{{ ds }}}}",
                                      end_ds="{{{{ ds }}}}", poll_interval=0.2, timeout=60)
    register >> transform >> run
"""
CONN_PASSWORD = "conn-HARDENING-PASSWORD-3030"


def test_secrets_never_in_logs_xcom_rendered_templates_or_page(tmp_path, airflow_db, monkeypatch, capfd):
    """A dag.test() run of register -> transform -> batch inference with secret-looking params and a
    connection password; the logs, XCom, rendered-template rows and the page must not hold them."""
    import importlib.util

    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from chronon_airflow.plugin.page import build_summary

    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if Path(os.environ["AIRFLOW_HOME"]) not in dags.resolve().parents:
        pytest.skip(f"DAGs folder {dags} is not inside the test AIRFLOW_HOME")
    b = start_backend(tmp_path / "home", free_port(), tmp_path / "wh")
    dag_file = dags / "hardening_secrets.py"
    try:
        monkeypatch.setenv(CONN_ENV, b.connection(CONN_PASSWORD, timeout=10))
        secret_params = {"api_key": SECRETS[0], "auth_token": SECRETS[1], "db_password": SECRETS[2], "note": JINJA}
        dags.mkdir(parents=True, exist_ok=True)
        dag_file.write_text(DAG_FILE.format(path=str(CONFIGS / "production/joins/search/query_relevance.v1"),
                                            params_json=json.dumps(secret_params)))
        spec = importlib.util.spec_from_file_location("hardening_secrets", dag_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        write_pre_mt(b.warehouse, module.join, "2024-08-02", query_relevance_rows("2024-08-02"))
        b.admin("POST", "/admin/faults", json={"job_delay_ms": 4000})  # the wait defers to the trigger
        run = module.dag.test(logical_date=dt.datetime(2024, 8, 2, tzinfo=dt.timezone.utc))
        states = {ti.task_id: ti.state for ti in run.get_task_instances()}
        assert states == dict.fromkeys(["register_model", "register_transform", "batch_inference"], "success"), states

        # The backend got the params verbatim (secrets and unrendered Jinja): its stored model matches.
        from chronon_reference_backend.store import Store

        assert Store(b.home / "backend.sqlite3").has_model(module.model)

        with create_session() as session:
            xcoms = [str(x.value) for x in session.query(XComModel).filter(XComModel.dag_id == "hardening_secrets")]
            rendered = [json.dumps(r.rendered_fields, default=str) for r in session.query(RenderedTaskInstanceFields)
                        .filter(RenderedTaskInstanceFields.dag_id == "hardening_secrets")]
        assert xcoms and rendered
        captured = capfd.readouterr()
        logs = captured.out + captured.err
        assert "registerModel query_encoder" in logs and "ModelBatchJobTrigger" in logs  # logs were captured
        log_files = "".join(p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*.log")
                            if "hardening_secrets" in str(p))
        page = json.dumps(build_summary(str(CONFIGS)))
        for where, text in {"logs": logs, "log files": log_files, "xcom": "\n".join(xcoms),
                            "rendered templates": "\n".join(rendered), "page": page}.items():
            for secret in [*SECRETS, CONN_PASSWORD]:
                assert secret not in text, f"{secret} leaked into {where}"
            assert JINJA_RENDERED not in text, f"Jinja was evaluated into {where}"
        assert "'api_key': '***'" in logs  # shown redacted, not dropped silently
    finally:
        dag_file.unlink(missing_ok=True)
        b.stop()


def test_backend_error_messages_echoing_a_secret_are_redacted():
    from chronon_airflow.backend.interface import BackendError
    from chronon_airflow.operators.model_backend import backend_failure

    err = BackendError(f"model backend rejected api_key={SECRETS[0]}", status_code=400)
    assert SECRETS[0] not in str(backend_failure("registerModel", "reference", err, [SECRETS[0]]))


# -- the reference backend ----------------------------------------------------------------------

def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port``, from /proc/net/tcp{,6}."""
    out = set()
    for name in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{name}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                out.add(addr)
    return out


@pytest.fixture(scope="module")
def cli_backend(tmp_path_factory):
    """The service started by its CLI with no --host: the default bind address."""
    root = tmp_path_factory.mktemp("cli-backend")
    port = free_port()
    log = (root / "backend.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "chronon-airflow"), "backend", "serve", "--port",
                             str(port), "--home", str(root / "home"), "--warehouse", str(root / "wh")],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "backend.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "backend did not start"
            time.sleep(0.1)
        yield url, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_reference_backend_binds_to_loopback_by_default(cli_backend):
    url, port = cli_backend
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, no 0.0.0.0 / ::
    assert httpx.post(url + "/admin/faults", json={"fail_next": 1}).status_code == 404  # no admin either


def test_reference_backend_rejects_oversized_and_hostile_bodies(cli_backend):
    url, _ = cli_backend
    big = b'{"model": {"pad": "' + b"x" * (9 * 1024 * 1024) + b'"}}'
    assert httpx.post(url + "/modelBackend/registerModel", content=big, timeout=30,
                      headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: the limit counts what arrives
        yield b'{"model": {"pad": "'
        for _ in range(10):
            yield b"x" * (1024 * 1024)
        yield b'"}}'

    r = httpx.post(url + "/modelBackend/registerModel", content=chunks(), timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 413
    deep = b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert httpx.post(url + "/modelBackend/registerModel", content=deep, timeout=30,
                      headers={"content-type": "application/json"}).status_code in (400, 413, 422)
    model = load_join("search/query_relevance.v1")["modelTransforms"]["transforms"][0]["model"]
    model["inferenceSpec"]["modelBackendParams"] = {"model_name": "../../../etc", "model_version": "1"}
    r = httpx.post(url + "/modelBackend/registerModel", json={"model": model}, timeout=10).json()
    assert r["isSuccess"] is False and "may contain only" in r["message"]  # no path traversal into its home
    assert httpx.get(url + "/healthz").status_code == 200  # still serving
