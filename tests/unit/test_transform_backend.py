"""One transform-backend rule: the DAG, ``chronon-airflow register``/``infer`` and the job link agree.

``risk.txn_fraud.v1`` of the project's ``configs/`` as it is (both models on ``reference``), and two
copies whose second model runs on ``sagemaker``: without ``customJson.model_transform_backend`` (the
first model's backend runs the join; ``infer`` used to refuse such a join while the DAG ran it) and
with it naming ``sagemaker``. Each backend has its own connection, so the job link's URL names the
backend the job was submitted to.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from chronon_airflow import cli_backend
from chronon_airflow.backend.interface import JobStatus, RegistrationResponse
from chronon_airflow.links.model_backend import ModelBackendJobLink
from tests.support.paths import CONFIGS
from tests.support.xcom import RecordingTI

JOIN = "risk.txn_fraud.v1"
DAG_ID = f"chronon.join_backfill.{JOIN}"
JOIN_FILE = "production/joins/risk/txn_fraud.v1"


def _repo(tmp_path: Path, variant: str) -> Path:
    if variant == "configs":
        return CONFIGS
    root = tmp_path / "configs"
    shutil.copytree(CONFIGS, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    data = json.loads((root / JOIN_FILE).read_text())
    data["modelTransforms"]["transforms"][1]["model"]["inferenceSpec"]["modelBackend"] = "sagemaker"
    if variant == "mixed_chosen":
        custom = json.loads(data["metaData"]["customJson"])
        data["metaData"]["customJson"] = json.dumps({**custom, "model_transform_backend": "sagemaker"})
    (root / JOIN_FILE).write_text(json.dumps(data))
    return root


class FakeClient:
    """Stands for every backend: records which backend each call went to."""

    calls: list[tuple[str, str]] = []

    def __init__(self, backend: str):
        self.backend = backend

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def _record(self, call: str):
        FakeClient.calls.append((call, self.backend))

    def register_model(self, model):
        self._record("registerModel")
        return RegistrationResponse(True, "REGISTERED")

    def register_model_transform(self, join):
        self._record("registerModelTransform")
        return RegistrationResponse(True, "REGISTERED")

    def run_model_batch_job(self, join, start_ds, end_ds, key):
        self._record("runModelBatchJob")
        return f"job-{self.backend}"

    def get_model_batch_job_status(self, job_id, start_ds, end_ds):
        return JobStatus("SUCCEEDED", True, "done")

    def run_model_inference(self, join, rows):
        self._record("runModelInference")
        return [{} for _ in rows]


class Outlets(dict):
    def __missing__(self, key):
        self[key] = argparse.Namespace(extra={})
        return self[key]


@pytest.fixture
def backends(monkeypatch):
    for name in ("reference", "sagemaker"):
        monkeypatch.setenv(f"AIRFLOW_CONN_CHRONON_BACKEND_{name.upper()}", json.dumps(
            {"conn_type": "chronon_model_backend", "host": f"{name}.internal", "port": 8765, "schema": "http"}))
    monkeypatch.setattr(FakeClient, "calls", [])
    monkeypatch.setattr("chronon_airflow.hooks.model_backend.ModelBackendHook.get_conn",
                        lambda self: FakeClient(self.backend))
    monkeypatch.setattr(cli_backend, "client_for", lambda backend, url: FakeClient(backend))


def _dag(root: Path):
    from chronon_airflow import deployment as dep
    from chronon_airflow import settings
    from chronon_airflow.plan.load import load_plan
    from chronon_airflow.render.dags import render

    deployment = dep.from_settings(settings.snapshot(), None)
    _repo_conf, plan = load_plan(root, deployment)
    planned = next(d for d in plan.dags if d.dag_id == DAG_ID)
    plan_backends = {t.task_id: t.spec.backend for t in planned.tasks
                     if t.kind in ("register_model_transform", "submit_batch_inference", "wait_for_batch_inference")}
    return plan_backends, render(plan, str(root), deployment, only_dag_id=DAG_ID)[DAG_ID]


def _job_link(dag) -> str:
    """Run the task that submits the job (fake backend), then compute the job link as the worker does."""
    from chronon_airflow.operators.model_backend import _JoinBackendOperator

    xcoms: dict = {}
    submitter = next(op for op in dag.tasks if isinstance(op, _JoinBackendOperator) and hasattr(op, "start_ds"))
    submitter.start_ds = submitter.end_ds = "2024-04-20"
    submitter.execute({"ti": RecordingTI(submitter.task_id, xcoms), "outlet_events": Outlets()})
    linked = [op for op in dag.tasks if any(isinstance(link, ModelBackendJobLink) for link in op.operator_extra_links)]
    assert linked, "no task of the join DAG shows the job link"
    urls = {ModelBackendJobLink().get_link(op, ti_key=RecordingTI(op.task_id, xcoms)) for op in linked}
    assert len(urls) == 1, urls
    return urls.pop()


@pytest.mark.parametrize("variant, expected", [("configs", "reference"), ("mixed", "reference"),
                                               ("mixed_chosen", "sagemaker")])
def test_dag_cli_and_link_use_the_plans_backend(tmp_path, backends, variant, expected):
    root = _repo(tmp_path, variant)
    conf = cli_backend.load_join(JOIN, str(root))
    assert conf.transform_backend == expected

    # The plan and every join-level task of the DAG.
    plan_backends, dag = _dag(root)
    assert set(plan_backends.values()) == {expected}
    join_level = {op.task_id: op.backend for op in dag.tasks
                  if op.task_id in plan_backends or op.task_id == "wait_for_batch_inference"}
    assert join_level and set(join_level.values()) == {expected}

    # The job the DAG submits, and the link to it.
    assert _job_link(dag) == f"http://{expected}.internal:8765/modelBackend/jobs/job-{expected}"
    assert ("runModelBatchJob", expected) in FakeClient.calls

    # chronon-airflow infer and register.
    FakeClient.calls.clear()
    args = argparse.Namespace(join=JOIN, repo=str(root), backend_url=None, backend=None, input='[{"amount_cents": 1}]')
    assert cli_backend.cmd_infer(args) == cli_backend.EXIT_OK
    assert FakeClient.calls == [("runModelInference", expected)]
    FakeClient.calls.clear()
    assert cli_backend.cmd_register(args) == cli_backend.EXIT_OK
    assert FakeClient.calls[-1] == ("registerModelTransform", expected)
    models = {b for call, b in FakeClient.calls if call == "registerModel"}
    assert models == ({"reference"} if variant == "configs" else {"reference", "sagemaker"})


def test_cli_backend_override_must_be_one_of_the_joins(tmp_path, backends, capsys):
    root = _repo(tmp_path, "mixed")
    args = argparse.Namespace(join=JOIN, repo=str(root), backend_url=None, backend="sagemaker", input="{}")
    assert cli_backend.cmd_infer(args) == cli_backend.EXIT_OK
    assert FakeClient.calls == [("runModelInference", "sagemaker")]
    args.backend = "vertex"
    assert cli_backend.cmd_infer(args) == cli_backend.EXIT_USAGE
    assert "no model on backend 'vertex'" in capsys.readouterr().err
