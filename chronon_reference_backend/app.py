"""The reference backend's HTTP API: exactly the CHIP-9 contract in ``openapi.json``."""
from __future__ import annotations

import html
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from chronon_airflow import __version__
from chronon_airflow.backend.idempotency import model_transforms_hash
from chronon_reference_backend import faults as faults_mod
from chronon_reference_backend import models, schema, transform
from chronon_reference_backend.jobs import JobRunner, date_range
from chronon_reference_backend.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimitMiddleware
from chronon_reference_backend.store import Store

log = logging.getLogger(__name__)

DS_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
REGISTERED, REJECTED = "REGISTERED", "REJECTED"


# -- contract types (they define openapi.json) --------------------------------------------------
class RegisterModelRequest(BaseModel):
    model: dict[str, Any] = Field(description="A Chronon Model as thrift JSON")


class RegisterModelTransformRequest(BaseModel):
    join: dict[str, Any] = Field(description="A compiled Chronon Join (thrift JSON) with modelTransforms")


class RegistrationResponse(BaseModel):
    isSuccess: bool
    status: str = Field(description="REGISTERED or REJECTED")
    message: str


class RunModelBatchJobRequest(BaseModel):
    join: dict[str, Any]
    startDs: str = Field(pattern=DS_PATTERN, description="first partition, YYYY-MM-DD")
    endDs: str = Field(pattern=DS_PATTERN, description="last partition (inclusive), YYYY-MM-DD")
    idempotencyKey: str = Field(min_length=1, max_length=256,
                                description="A repeated key returns the existing job (unless it ended FAILED or "
                                            "CANCELLED, which starts a new attempt)")


class RunModelBatchJobResponse(BaseModel):
    jobId: str


class GetModelBatchJobStatusRequest(BaseModel):
    jobId: str
    startDs: str = Field(pattern=DS_PATTERN)
    endDs: str = Field(pattern=DS_PATTERN)


JobState = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]


class JobStatusResponse(BaseModel):
    status: JobState
    isSuccess: bool
    message: str


class RunModelInferenceRequest(BaseModel):
    join: dict[str, Any]
    inputs: list[dict[str, Any]] = Field(description="Rows keyed by raw-join column names")


class RunModelInferenceResponse(BaseModel):
    outputs: list[dict[str, Any]] = Field(description="One row per input, same order: passthrough fields present "
                                                      "in the input plus every model output column")


class ErrorResponse(BaseModel):
    detail: str


def _join_name(join: dict[str, Any]) -> str:
    name = (join.get("metaData") or {}).get("name")
    if not name:
        raise HTTPException(422, "join has no metaData.name")
    return name


def create_app(home: Path, warehouse_root: Path, *, enable_admin: bool = False, workers: int = 2,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    home, warehouse_root = Path(home), Path(warehouse_root)
    store = Store(home / "backend.sqlite3")
    faults = faults_mod.Faults()
    runner = JobRunner(store, home, warehouse_root, workers=workers,
                       should_fail=faults.job_failure if enable_admin else None,
                       delay=faults.job_delay if enable_admin else None)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        resumed = runner.resume_interrupted()
        if resumed:
            log.warning("resumed %d model batch job(s) interrupted by the previous shutdown", resumed)
        yield
        runner.shutdown()

    app = FastAPI(title="Chronon model backend (CHIP-9)", version=__version__, lifespan=lifespan,
                  description="The HTTP/JSON contract between chronon-airflow and a model backend. "
                              "Served by the chronon-airflow reference backend.")
    app.state.store, app.state.runner, app.state.faults = store, runner, faults
    app.state.home, app.state.warehouse = home, warehouse_root
    if enable_admin:
        app.add_middleware(faults_mod.FaultMiddleware, faults=faults)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    errors: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}, 409: {"model": ErrorResponse},
                                              413: {"model": ErrorResponse}}

    @app.post("/modelBackend/registerModel", response_model=RegistrationResponse, responses=errors,
              summary="registerModel(model) -> RegistrationResponse")
    def register_model(request: RegisterModelRequest) -> RegistrationResponse:
        model = request.model
        name = (model.get("metaData") or {}).get("name")
        if not name:
            return RegistrationResponse(isSuccess=False, status=REJECTED, message="model has no metaData.name")
        try:
            loaded = models.load(home, model)
            models.check_compatible(model, loaded)
        except (FileNotFoundError, ValueError) as e:
            return RegistrationResponse(isSuccess=False, status=REJECTED, message=str(e))
        store.put_model(model)
        meta = loaded.meta
        return RegistrationResponse(isSuccess=True, status=REGISTERED,
                                    message=f"model {name} registered: {meta['kind']} artifact "
                                            f"{meta['model_name']} v{meta['model_version']}")

    @app.post("/modelBackend/registerModelTransform", response_model=RegistrationResponse, responses=errors,
              summary="registerModelTransform(join) -> RegistrationResponse")
    def register_model_transform(request: RegisterModelTransformRequest) -> RegistrationResponse:
        join = request.join
        name = _join_name(join)
        problems = schema.transform_problems(join)
        for t in (join.get("modelTransforms") or {}).get("transforms") or []:
            model = t.get("model") or {}
            if model and not store.has_model(model):
                problems.append(f"model {(model.get('metaData') or {}).get('name')} is not registered with this "
                                "definition; call registerModel first")
        if problems:
            return RegistrationResponse(isSuccess=False, status=REJECTED,
                                        message=f"join {name}: " + "; ".join(problems))
        store.put_transform(name, model_transforms_hash(join), join)
        return RegistrationResponse(isSuccess=True, status=REGISTERED,
                                    message=f"model transform of join {name} registered; output columns "
                                            f"{schema.output_columns(join)}")

    def _require_registered(join: dict[str, Any]) -> str:
        name = _join_name(join)
        if "modelTransforms" not in join:
            raise HTTPException(409, f"join {name} has no modelTransforms")
        registered = store.transform_hash(name)
        if registered is None:
            raise HTTPException(409, f"the model transform of join {name} is not registered; "
                                     "call registerModelTransform first")
        if registered != model_transforms_hash(join):
            raise HTTPException(409, f"join {name} was registered with different model transforms; "
                                     "call registerModelTransform again")
        return name

    @app.post("/modelBackend/runModelBatchJob", response_model=RunModelBatchJobResponse, responses=errors,
              summary="runModelBatchJob(join, start_ds, end_ds) -> JobId")
    def run_model_batch_job(request: RunModelBatchJobRequest) -> RunModelBatchJobResponse:
        name = _require_registered(request.join)
        try:
            date_range(request.startDs, request.endDs)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        job, created = store.find_or_create_job(request.idempotencyKey, name, request.startDs, request.endDs,
                                                request.join)
        if created:
            runner.submit(job.job_id)
        return RunModelBatchJobResponse(jobId=job.job_id)

    @app.post("/modelBackend/getModelBatchJobStatus", response_model=JobStatusResponse, responses=errors,
              summary="getModelBatchJobStatus(job_id, start_ds, end_ds) -> JobStatus")
    def get_model_batch_job_status(request: GetModelBatchJobStatusRequest) -> JobStatusResponse:
        job = store.get_job(request.jobId)
        if job is None:
            raise HTTPException(404, f"unknown job id {request.jobId}")
        if (job.start_ds, job.end_ds) != (request.startDs, request.endDs):
            raise HTTPException(422, f"job {job.job_id} covers {job.start_ds}..{job.end_ds}, "
                                     f"not {request.startDs}..{request.endDs}")
        # The store holds only these states; pydantic checks the value again.
        status = cast(JobState, job.status)
        return JobStatusResponse(status=status, isSuccess=job.status == "SUCCEEDED", message=job.message)

    @app.post("/modelBackend/runModelInference", response_model=RunModelInferenceResponse, responses=errors,
              summary="runModelInference(join, inputs) -> outputs")
    def run_model_inference(request: RunModelInferenceRequest) -> RunModelInferenceResponse:
        name = _require_registered(request.join)
        if not request.inputs:
            return RunModelInferenceResponse(outputs=[])
        try:
            loaded = transform.load_models(home, request.join)
            frame = pd.DataFrame.from_records(request.inputs)
            result = transform.apply(request.join, frame, loaded, where=f"the inputs of join {name}",
                                     require_passthrough=False)
        except transform.TransformError as e:
            raise HTTPException(422, str(e)) from None
        # NaN is not JSON: send it as null.
        rows = result.astype(object).where(pd.notna(result), None).to_dict(orient="records")
        return RunModelInferenceResponse(outputs=rows)

    if enable_admin:
        # Not part of the contract: kept out of the OpenAPI document.
        @app.post("/admin/faults", include_in_schema=False)
        def set_faults(settings: faults_mod.FaultSettings) -> dict[str, Any]:
            faults.update(settings)
            return faults.snapshot()

        @app.get("/admin/faults", include_in_schema=False)
        def get_faults() -> dict[str, Any]:
            return faults.snapshot()

        @app.delete("/admin/faults", include_in_schema=False)
        def reset_faults() -> dict[str, Any]:
            faults.reset()
            return faults.snapshot()

        @app.get("/admin/jobs", include_in_schema=False)
        def job_counts() -> dict[str, Any]:
            counts = store.job_counts()
            return {"total": sum(counts.values()), "byStatus": counts}

    @app.get("/modelBackend/jobs/{job_id}", include_in_schema=False, response_class=HTMLResponse)
    def job_page(job_id: str) -> HTMLResponse:
        """A human page for one job: what Airflow's "Model backend job" link opens."""
        job = store.get_job(job_id)
        if job is None:
            raise HTTPException(404, f"unknown job id {job_id}")
        rows = [("Job", job.job_id), ("Join", job.join_name), ("Partitions", f"{job.start_ds}..{job.end_ds}"),
                ("Status", job.status), ("Message", job.message or "")]
        body = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        return HTMLResponse(f"<!doctype html><title>Model batch job {html.escape(job.job_id)}</title>"
                            f"<h1>Model batch job</h1><table>{body}</table>",
                            headers={"Content-Security-Policy": "default-src 'none'"})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


