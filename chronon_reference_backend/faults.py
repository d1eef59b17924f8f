"""Fault injection for tests and benchmarks: failing status codes (with Retry-After), added
latency, malformed JSON bodies and failing jobs of chosen joins. Only reachable when the server is
started with ``--enable-admin`` (or ``CHRONON_BACKEND_ENABLE_ADMIN=1``)."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send


class FaultSettings(BaseModel):
    """Body of ``POST /admin/faults``; omitted fields keep their current value."""

    fail_next: int | None = Field(None, ge=0, description="answer the next N contract requests with `status`")
    status: int | None = Field(None, ge=400, le=599, description="status code for failed requests (default 503)")
    retry_after: float | None = Field(None, ge=0, description="Retry-After seconds on failed requests")
    latency_ms: int | None = Field(None, ge=0, description="delay added to every contract request")
    malformed_next: int | None = Field(None, ge=0, description="answer the next N requests with a broken JSON body")
    fail_jobs_for_joins: list[str] | None = Field(None, description="batch jobs of these joins end FAILED")
    job_delay_ms: int | None = Field(None, ge=0, description="each batch job stays RUNNING this long before working")


@dataclass
class Faults:
    fail_next: int = 0
    status: int = 503
    retry_after: float | None = None
    latency_ms: int = 0
    malformed_next: int = 0
    fail_jobs_for_joins: set[str] = field(default_factory=set)
    job_delay_ms: int = 0
    injected: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, settings: FaultSettings) -> None:
        with self._lock:
            for name, value in settings.model_dump(exclude_none=True).items():
                setattr(self, name, set(value) if name == "fail_jobs_for_joins" else value)

    def reset(self) -> None:
        with self._lock:
            self.fail_next, self.status, self.retry_after, self.latency_ms = 0, 503, None, 0
            self.malformed_next, self.injected, self.job_delay_ms = 0, 0, 0
            self.fail_jobs_for_joins = set()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"fail_next": self.fail_next, "status": self.status, "retry_after": self.retry_after,
                    "latency_ms": self.latency_ms, "malformed_next": self.malformed_next,
                    "fail_jobs_for_joins": sorted(self.fail_jobs_for_joins), "job_delay_ms": self.job_delay_ms,
                    "injected": self.injected,
                    "requests": self.requests}

    def job_failure(self, join_name: str) -> str | None:
        return f"injected failure for join {join_name}" if join_name in self.fail_jobs_for_joins else None

    def job_delay(self) -> float:
        return self.job_delay_ms / 1000.0

    def take(self) -> tuple[str | None, float]:
        """Decide the fault for one request: ``("status"|"malformed"|None, latency seconds)``."""
        with self._lock:
            self.requests += 1
            latency = self.latency_ms / 1000.0
            if self.fail_next > 0:
                self.fail_next -= 1
                self.injected += 1
                return "status", latency
            if self.malformed_next > 0:
                self.malformed_next -= 1
                self.injected += 1
                return "malformed", latency
            return None, latency


class FaultMiddleware:
    """Applies :class:`Faults` to ``/modelBackend/*`` requests only (admin and docs stay healthy)."""

    def __init__(self, app: ASGIApp, faults: Faults):
        self.app, self.faults = app, faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/modelBackend/"):
            await self.app(scope, receive, send)
            return
        fault, latency = self.faults.take()
        if latency:
            await asyncio.sleep(latency)
        if fault == "status":
            headers = [(b"content-type", b"application/json")]
            if self.faults.retry_after is not None:
                headers.append((b"retry-after", str(self.faults.retry_after).encode()))
            body = b'{"detail": "injected fault"}'
            await send({"type": "http.response.start", "status": self.faults.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if fault == "malformed":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"isSuccess": tru'})
            return
        await self.app(scope, receive, send)
