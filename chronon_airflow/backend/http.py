"""HTTP/JSON client for the CHIP-9 model backend contract (see reference_backend/openapi.json).

Every call is a ``POST /modelBackend/<call>`` with a JSON body. Transient failures — connection
errors, timeouts, HTTP 5xx, HTTP 429 and unparseable bodies — are retried with exponential backoff
(honouring ``Retry-After`` on 429/503); 4xx answers are final. Retrying every call is safe: the
registrations are upserts and a batch job submit carries an idempotency key.
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from chronon_airflow.backend.interface import (
    AsyncModelBackend,
    BackendConflictError,
    BackendError,
    BackendNotFoundError,
    JobStatus,
    ModelBackend,
    RegistrationResponse,
)

log = logging.getLogger(__name__)

API_PREFIX = "/modelBackend"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0


class _TransientError(BackendError):
    """A retryable failure; ``retry_after`` is the server's Retry-After in seconds, if it sent one."""

    def __init__(self, message: str, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(message, status_code=status_code, transient=True)
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(response: httpx.Response) -> str:
    """The server's error message: FastAPI's ``detail``, a ``message`` field, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        detail = body.get("detail", body.get("message"))
        if detail is not None:
            return detail if isinstance(detail, str) else str(detail)
    return response.text[:500]


def _inference_outputs(body: dict[str, Any], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``runModelInference``'s outputs: one per input row, in order."""
    outputs = body.get("outputs")
    if not isinstance(outputs, list) or len(outputs) != len(inputs):
        raise BackendError(f"runModelInference answered {len(outputs) if isinstance(outputs, list) else outputs!r} "
                           f"outputs for {len(inputs)} inputs")
    return outputs


def _decode(response: httpx.Response, url: str) -> dict[str, Any]:
    """Turn a response into its JSON body, or raise the matching BackendError."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise _TransientError(f"model backend {url} answered HTTP {status}: {_detail(response)}", status,
                              parse_retry_after(response.headers.get("Retry-After")))
    if status == 404:
        raise BackendNotFoundError(f"model backend {url} answered HTTP 404: {_detail(response)}", status)
    if status == 409:
        raise BackendConflictError(f"model backend {url} answered HTTP 409: {_detail(response)}", status)
    if status >= 400:
        raise BackendError(f"model backend {url} answered HTTP {status}: {_detail(response)}", status)
    try:
        body = response.json()
    except ValueError:
        # A 2xx with a broken body is most likely a proxy or a half-written answer: retry it.
        raise _TransientError(f"model backend {url} answered HTTP {status} with a body that is not JSON: "
                              f"{response.text[:200]!r}", status) from None
    if not isinstance(body, dict):
        raise _TransientError(f"model backend {url} answered a JSON {type(body).__name__}, expected an object", status)
    return body


class _RetryPolicy:
    def __init__(self, max_attempts: int, backoff_initial: float, backoff_max: float):
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        # Exponential backoff with jitter so that many tasks retrying together spread out.
        base = self.backoff_initial * (2 ** (state.attempt_number - 1))
        return min(self.backoff_max, base + random.uniform(0, self.backoff_initial))

    def before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("model backend call failed (attempt %d/%d), retrying in %.2fs: %s", state.attempt_number,
                    self.max_attempts, state.next_action.sleep if state.next_action else 0.0, exc)

    def kwargs(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.max_attempts),
            "wait": self.wait,
            "retry": retry_if_exception(lambda e: isinstance(e, BackendError) and e.transient),
            "before_sleep": self.before_sleep,
            "reraise": True,
        }


class _Base:
    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 backoff_initial: float = DEFAULT_BACKOFF_INITIAL, backoff_max: float = DEFAULT_BACKOFF_MAX,
                 token: str | None = None, headers: dict[str, str] | None = None):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"model backend URL {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.retry = _RetryPolicy(max_attempts, backoff_initial, backoff_max)
        self._headers = {"Accept": "application/json", **(headers or {})}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:  # never show the token
        return f"{type(self).__name__}({self.base_url!r})"

    def _url(self, call: str) -> str:
        return f"{self.base_url}{API_PREFIX}/{call}"


class HttpModelBackend(_Base, ModelBackend):
    """Blocking client (operators, CLI). Reuses one connection pool; close() or use as a context manager."""

    def __init__(self, base_url: str, **kwargs: Any):
        super().__init__(base_url, **kwargs)
        self._client = httpx.Client(timeout=self.timeout, headers=self._headers)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpModelBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, call: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self._url(call)
        for attempt in Retrying(**self.retry.kwargs()):
            with attempt:
                try:
                    response = self._client.post(url, json=payload)
                except httpx.TransportError as e:
                    raise _TransientError(f"cannot reach model backend {url}: {type(e).__name__}: {e}") from e
                return _decode(response, url)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def register_model(self, model: dict[str, Any]) -> RegistrationResponse:
        return RegistrationResponse.from_json(self._post("registerModel", {"model": model}))

    def register_model_transform(self, join: dict[str, Any]) -> RegistrationResponse:
        return RegistrationResponse.from_json(self._post("registerModelTransform", {"join": join}))

    def run_model_batch_job(self, join: dict[str, Any], start_ds: str, end_ds: str, idempotency_key: str) -> str:
        body = self._post("runModelBatchJob", {"join": join, "startDs": start_ds, "endDs": end_ds,
                                               "idempotencyKey": idempotency_key})
        return str(body["jobId"])

    def get_model_batch_job_status(self, job_id: str, start_ds: str, end_ds: str) -> JobStatus:
        return JobStatus.from_json(self._post("getModelBatchJobStatus",
                                              {"jobId": job_id, "startDs": start_ds, "endDs": end_ds}))

    def run_model_inference(self, join: dict[str, Any], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _inference_outputs(self._post("runModelInference", {"join": join, "inputs": inputs}), inputs)


class AsyncHttpModelBackend(_Base, AsyncModelBackend):
    """asyncio client (the trigger). Create it inside the running event loop."""

    def __init__(self, base_url: str, **kwargs: Any):
        super().__init__(base_url, **kwargs)
        self._client = httpx.AsyncClient(timeout=self.timeout, headers=self._headers)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> AsyncHttpModelBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post(self, call: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self._url(call)
        async for attempt in AsyncRetrying(**self.retry.kwargs()):
            with attempt:
                try:
                    response = await self._client.post(url, json=payload)
                except httpx.TransportError as e:
                    raise _TransientError(f"cannot reach model backend {url}: {type(e).__name__}: {e}") from e
                return _decode(response, url)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def register_model(self, model: dict[str, Any]) -> RegistrationResponse:
        return RegistrationResponse.from_json(await self._post("registerModel", {"model": model}))

    async def register_model_transform(self, join: dict[str, Any]) -> RegistrationResponse:
        return RegistrationResponse.from_json(await self._post("registerModelTransform", {"join": join}))

    async def run_model_batch_job(self, join: dict[str, Any], start_ds: str, end_ds: str, idempotency_key: str) -> str:
        body = await self._post("runModelBatchJob", {"join": join, "startDs": start_ds, "endDs": end_ds,
                                                     "idempotencyKey": idempotency_key})
        return str(body["jobId"])

    async def get_model_batch_job_status(self, job_id: str, start_ds: str, end_ds: str) -> JobStatus:
        return JobStatus.from_json(await self._post("getModelBatchJobStatus",
                                                    {"jobId": job_id, "startDs": start_ds, "endDs": end_ds}))

    async def run_model_inference(self, join: dict[str, Any], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _inference_outputs(await self._post("runModelInference", {"join": join, "inputs": inputs}), inputs)
