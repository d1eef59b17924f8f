"""The reference backend as a child process on loopback: for the benchmark and the tests, which
need a real service to talk to and must stop exactly what they started (by PID)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """A free TCP port on loopback (never 8080, never one already handed out in ``avoid``)."""
    avoid = avoid or set()
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port != 8080 and port not in avoid:
            avoid.add(port)
            return port


@dataclass
class BackendProcess:
    url: str
    port: int
    home: Path
    warehouse: Path
    process: subprocess.Popen
    log: Path

    def admin(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call to the service's own endpoints (``/admin/faults``, ``/admin/jobs``); JSON answer."""
        response = httpx.request(method, self.url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def connection(self, password: str | None = None, **extra: Any) -> str:
        """The Airflow connection, as the JSON value of an ``AIRFLOW_CONN_*`` variable, that reaches
        this service (``extra`` are the hook's client options, e.g. ``max_attempts``)."""
        conn: dict[str, Any] = {"conn_type": "chronon_model_backend", "host": "127.0.0.1", "port": self.port,
                                "schema": "http"}
        if password:
            conn["password"] = password
        if extra:
            conn["extra"] = extra
        return json.dumps(conn)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_backend(home: Path, warehouse: Path, repo: Path, port: int, *, admin: bool = True,
                  log: Path | None = None, env: dict[str, str] | None = None,
                  timeout: float = 60.0) -> BackendProcess:
    """``reference_backend serve`` on ``127.0.0.1:port``; returns once ``/healthz`` answers (the first
    start of an empty ``home`` trains the repo's models, hence the generous ``timeout``)."""
    log = log or home.parent / f"backend-{port}.log"
    cmd = [sys.executable, "-m", "chronon_reference_backend", "serve", "--port", str(port),
           "--home", str(home), "--warehouse", str(warehouse), "--repo", str(repo)]
    if admin:
        cmd.append("--enable-admin")
    with log.open("w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   env=os.environ.copy() if env is None else env)
    backend = BackendProcess(f"http://127.0.0.1:{port}", port, home, warehouse, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"reference backend exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(backend.url + "/healthz", timeout=1).status_code == 200:
                return backend
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    backend.stop()
    raise RuntimeError(f"reference backend did not come up on port {port}:\n{log.read_text()[-3000:]}")
