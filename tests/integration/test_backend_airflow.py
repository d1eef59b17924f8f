"""Hook, trigger, sensor and operators against the real reference backend, plus one dag.test()."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from chronon_airflow import naming, warehouse
from chronon_airflow.backend.http import HttpModelBackend
from chronon_airflow.backend.idempotency import idempotency_key
from tests.support.backend import (
    CONN_ENV,
    first_event,
    load_join,
    query_relevance_rows,
    running_backend,
    trigger_for,
    wait_for_job,
    write_pre_mt,
)

QR = "search/query_relevance.v1"


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    with running_backend(tmp_path_factory.mktemp("backend-af"), QR) as b:
        yield b


@pytest.fixture
def connection(backend, monkeypatch):
    """The reference backend's Airflow connection, by the documented env-var convention. One attempt
    per call, so each injected fault is one failed poll for the trigger."""
    monkeypatch.setenv(CONN_ENV, backend.connection("tok-very-secret", max_attempts=1, timeout=10))
    yield
    backend.admin("DELETE", "/admin/faults")


def submit(backend, ds: str, key: str | None = None) -> str:
    join = load_join(QR)
    write_pre_mt(backend.warehouse, join, ds, query_relevance_rows(ds))
    with HttpModelBackend(backend.url) as c:
        return c.run_model_batch_job(join, ds, ds, key or idempotency_key(join, ds, ds))


def test_hook_resolves_the_connection_and_names_a_missing_one(connection):
    from chronon_airflow.hooks.model_backend import ModelBackendConnectionMissing, ModelBackendHook

    hook = ModelBackendHook("reference")
    assert hook.model_backend_conn_id == "chronon_backend_reference"
    ok, message = hook.test_connection()
    assert ok, message
    client = hook.get_conn()
    assert "tok-very-secret" not in repr(client)
    client.close()
    with pytest.raises(ModelBackendConnectionMissing, match="'sagemaker'.*'chronon_backend_sagemaker'"):
        ModelBackendHook("sagemaker").get_conn()


def test_provider_registers_the_connection_type():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook_class = "chronon_airflow.hooks.model_backend.ModelBackendHook"
    # What the UI's connection form lists (without importing hooks) ...
    pm = ProvidersManager()
    ui = {m.connection_type: m for m in pm.iter_connection_type_hook_ui_metadata()}
    assert ui["chronon_model_backend"].hook_class_name == hook_class
    assert "extra__chronon_model_backend__base_url" in pm.connection_form_widgets
    # ... and what a task process resolves the connection type to.
    assert ProvidersManagerTaskRuntime().hooks["chronon_model_backend"].hook_class_name == hook_class


def test_trigger_serialize_round_trip():
    from airflow.sdk.module_loading import import_string

    trigger = trigger_for("job-1", "2024-01-01", max_consecutive_errors=3, deadline=123.5)
    path, kwargs = trigger.serialize()
    assert path == "chronon_airflow.triggers.model_batch_job.ModelBatchJobTrigger"
    json.dumps(kwargs)  # the triggerer stores it as JSON
    rebuilt = import_string(path)(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)


def test_trigger_run_succeeds(backend, connection):
    job_id = submit(backend, "2024-07-01")
    event = asyncio.run(first_event(trigger_for(job_id, "2024-07-01")))
    assert event["status"] == "success" and event["job_status"] == "SUCCEEDED", event
    assert event["job_id"] == job_id


def test_trigger_run_reports_backend_failure_message(backend, connection):
    job_id = submit(backend, "2024-07-02")  # fine input, but jobs of this join are made to fail
    backend.admin("POST", "/admin/faults", json={"fail_jobs_for_joins": ["search.query_relevance.v1"]})
    failing = submit(backend, "2024-07-03")
    event = asyncio.run(first_event(trigger_for(failing, "2024-07-03")))
    assert event["status"] == "failed" and event["job_status"] == "FAILED"
    assert "injected failure for join search.query_relevance.v1" in event["message"]
    assert job_id != failing


def test_trigger_tolerates_transient_errors_up_to_a_bound(backend, connection):
    job_id = submit(backend, "2024-07-04")
    backend.admin("POST", "/admin/faults", json={"fail_next": 2, "status": 503})
    event = asyncio.run(first_event(trigger_for(job_id, "2024-07-04", max_consecutive_errors=3)))
    assert event["status"] == "success", event

    backend.admin("POST", "/admin/faults", json={"fail_next": 10, "status": 503})
    event = asyncio.run(first_event(trigger_for(job_id, "2024-07-04", max_consecutive_errors=2)))
    assert event["status"] == "error"
    assert "after 2 consecutive poll errors" in event["message"] and "503" in event["message"]


def test_trigger_unknown_job_and_timeout(backend, connection):
    event = asyncio.run(first_event(trigger_for("job-unknown", "2024-07-05")))
    assert event["status"] == "error" and "404" in event["message"]

    # A job that stays RUNNING outlives a deadline 0.3 s away: the trigger times out, says so.
    backend.admin("POST", "/admin/faults", json={"job_delay_ms": 3000})
    job_id = submit(backend, "2024-07-06")
    started = time.monotonic()
    event = asyncio.run(first_event(trigger_for(job_id, "2024-07-06", deadline=time.time() + 0.3)))
    assert event["status"] == "timeout" and "did not finish before the timeout" in event["message"]
    assert 0.25 <= time.monotonic() - started < 10  # the status says the deadline ended it; this, roughly when


def test_trigger_polls_first_one_interval_after_it_starts(backend, connection):
    """The task polled just before deferring; a trigger that fired at once would race Airflow's
    handling of the deferring worker's exit (chronon_airflow/triggers/pacing.py)."""
    job_id = submit(backend, "2024-07-07")
    with HttpModelBackend(backend.url) as c:  # until the job has ended: a first poll at once would see SUCCEEDED
        wait_for_job(c, job_id, "2024-07-07", "2024-07-07")
    started = time.monotonic()
    event = asyncio.run(first_event(trigger_for(job_id, "2024-07-07", poll_interval=1.0)))
    assert event["status"] == "success", event
    assert time.monotonic() - started >= 1.0

    # A triggerer that restarts after the deadline still polls once, at once.
    late = trigger_for(job_id, "2024-07-07", poll_interval=3600.0, deadline=time.time() - 5)
    assert asyncio.run(asyncio.wait_for(first_event(late), 30))["status"] == "success"


def test_sensor_poke_mode_fails_with_backend_message(backend, connection):
    from airflow.sdk.exceptions import AirflowFailException

    from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

    with HttpModelBackend(backend.url) as c:
        job_id = c.run_model_batch_job(load_join(QR), "2022-01-01", "2022-01-01", "k-poke")
    sensor = ModelBatchJobSensor(task_id="wait", join=load_join(QR), job_id=job_id, start_ds="2022-01-01",
                                 end_ds="2022-01-01", deferrable=False, poke_interval=0.05)
    with pytest.raises(AirflowFailException, match="missing input partitions ds=2022-01-01"):
        for _ in range(200):
            if sensor.poke({}):
                break
            time.sleep(0.05)


def test_operators_template_only_the_dates():
    from chronon_airflow.operators.model_backend import (
        RegisterModelsOperator,
        RegisterModelTransformOperator,
        SubmitModelBatchJobOperator,
    )
    from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

    assert SubmitModelBatchJobOperator.template_fields == ("start_ds", "end_ds")
    assert RegisterModelsOperator.template_fields == () and RegisterModelTransformOperator.template_fields == ()
    assert "join" not in ModelBatchJobSensor.template_fields


DAG_FILE = """
import datetime as dt
import json
from pathlib import Path

from airflow.sdk import DAG

from chronon_airflow.operators.model_backend import (
    RegisterModelsOperator, RegisterModelTransformOperator, SubmitModelBatchJobOperator)
from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

join = json.loads(Path({path!r}).read_text())
# A secret-looking param must reach the backend but never the logs or XCom.
join["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]["api_token"] = "zz-hidden"

with DAG("backend_dag_test", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False) as dag:
    register = RegisterModelsOperator(task_id="register_models", join=join)
    transform = RegisterModelTransformOperator(task_id="register_transform", join=join)
    submit = SubmitModelBatchJobOperator(task_id="submit", join=join, start_ds="{{{{ ds }}}}", end_ds="{{{{ ds }}}}")
    wait = ModelBatchJobSensor(task_id="wait", join=join, job_id=submit.output, start_ds="{{{{ ds }}}}",
                               end_ds="{{{{ ds }}}}", poke_interval=0.2, timeout=60)
    register >> transform >> submit >> wait
"""


def test_dag_test_register_submit_wait(backend, connection, airflow_db, capfd):
    import importlib.util
    import os
    from pathlib import Path

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.support.backend import CONFIGS

    # dag.test() looks the DAG up in a bundle, so it must live in the DAGs folder — only ever the
    # throwaway one of the test AIRFLOW_HOME, never a real project folder.
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if Path(os.environ["AIRFLOW_HOME"]) not in dags.resolve().parents:
        pytest.skip(f"DAGs folder {dags} is not inside the test AIRFLOW_HOME; not writing a test DAG there")
    dags.mkdir(parents=True, exist_ok=True)
    dag_file = dags / "backend_dag_test.py"
    dag_file.write_text(DAG_FILE.format(path=str(CONFIGS / "production" / "joins" / QR)))
    spec = importlib.util.spec_from_file_location("backend_dag_test", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    write_pre_mt(backend.warehouse, load_join(QR), "2024-08-01", query_relevance_rows("2024-08-01"))
    # Keep the job RUNNING a moment so the sensor's first check sees it unfinished and defers.
    backend.admin("POST", "/admin/faults", json={"job_delay_ms": 4000})
    try:
        run = module.dag.test(logical_date=dt.datetime(2024, 8, 1, tzinfo=dt.timezone.utc))
    finally:
        dag_file.unlink()
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"register_models": "success", "register_transform": "success", "submit": "success",
                      "wait": "success"}, states
    out = naming.output_table("search_features", "search.query_relevance.v1")
    assert "2024-08-01" in warehouse.list_partitions(backend.warehouse, out)

    with create_session() as session:
        xcoms = {(x.task_id, x.key): x.value for x in
                 session.query(XComModel).filter(XComModel.dag_id == "backend_dag_test",
                                                 XComModel.run_id == run.run_id)}
    job_id = str(xcoms[("submit", "return_value")]).strip('"')
    assert job_id.startswith("job-")
    assert str(xcoms[("submit", "job_id")]).strip('"') == job_id
    assert ("submit", "idempotency_key") in xcoms
    assert "zz-hidden" not in json.dumps({f"{k}": str(v) for k, v in xcoms.items()})
    captured = capfd.readouterr()
    assert "zz-hidden" not in captured.out + captured.err
    assert "registerModel query_encoder" in captured.out + captured.err  # the logs were captured at all
    assert "ModelBatchJobTrigger" in captured.out + captured.err  # the wait really deferred
