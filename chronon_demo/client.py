"""A small client of Airflow 3's REST API v2, authenticated with a JWT from the simple auth
manager (``POST /auth/token``)."""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx


class AirflowApiError(RuntimeError):
    pass


def _q(value: str) -> str:
    return quote(value, safe="")


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.username, self.password = username, password
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- auth -------------------------------------------------------------------------------------

    def login(self) -> str:
        r = self.http.post("/auth/token", json={"username": self.username, "password": self.password})
        if r.status_code not in (200, 201):
            raise AirflowApiError(f"login as {self.username} failed: HTTP {r.status_code} {r.text[:200]}")
        self.token = r.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        return self.token

    def request(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        if self.token is None:
            self.login()
        for attempt in range(4):
            try:
                r = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                # SQLite under load can make the API server slow; a few retries, then give up.
                if attempt == 3:
                    raise
                time.sleep(2.0)
                continue
            if r.status_code == 401 and attempt == 0:
                self.login()
                continue
            if r.status_code in ok:
                return r
            if r.status_code >= 500 and attempt < 3:
                time.sleep(2.0)
                continue
            raise AirflowApiError(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        raise AirflowApiError(f"{method} {path}: no answer")

    # -- DAGs -------------------------------------------------------------------------------------

    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        r = self.request("GET", f"/api/v2/dags/{_q(dag_id)}", ok=(200, 404))
        return r.json() if r.status_code == 200 else None

    def dag_ids(self) -> list[str]:
        r = self.request("GET", "/api/v2/dags", params={"limit": 1000})
        return [d["dag_id"] for d in r.json()["dags"]]

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180.0) -> None:
        """Until the dag-processor has parsed and stored every DAG in ``dag_ids``."""
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing:
            missing = [d for d in missing if self.get_dag(d) is None]
            if not missing:
                return
            if time.monotonic() > deadline:
                errors = self.import_errors()
                raise AirflowApiError(f"DAGs not parsed after {timeout:.0f}s: {missing}; import errors: {errors}")
            time.sleep(2.0)

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return self.request("PATCH", f"/api/v2/dags/{_q(dag_id)}", json={"is_paused": paused}).json()

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v2/importErrors").json().get("import_errors", [])

    # -- runs -------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None,
                note: str | None = None) -> dict[str, Any]:
        """A manual run without a logical date (Airflow 3), its range in ``conf``."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        if note:
            body["note"] = note
        return self.request("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", ok=(200,), json=body).json()

    def dag_runs(self, dag_id: str, run_type: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 100, "order_by": "-run_after"}
        if run_type:
            params["run_type"] = run_type
        return self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns", params=params).json()["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}").json()

    def set_dag_run_state(self, dag_id: str, run_id: str, state: str, note: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state}
        if note is not None:
            body["note"] = note
        return self.request("PATCH", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", json=body).json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        r = self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances",
                         params={"limit": 1000})
        return r.json()["task_instances"]

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        r = self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/upstreamAssetEvents")
        return r.json().get("asset_events", [])

    def clear_task(self, dag_id: str, run_id: str, task_id: str, downstream: bool = False) -> dict[str, Any]:
        """Clear one task instance of a run (what the UI's Clear does): it runs again."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "include_downstream": downstream,
                "only_failed": False, "reset_dag_runs": True}
        return self.request("POST", f"/api/v2/dags/{_q(dag_id)}/clearTaskInstances", json=body).json()

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, conf: dict[str, Any] | None = None,
                        max_active_runs: int = 2) -> dict[str, Any]:
        """An Airflow backfill (``POST /api/v2/backfills``) of the intervals starting ``from_date``
        to ``to_date`` (dates, both included); ``conf`` is its ``dag_run_conf``."""
        body: dict[str, Any] = {"dag_id": dag_id, "from_date": f"{from_date}T00:00:00Z",
                                "to_date": f"{to_date}T00:00:00Z", "max_active_runs": max_active_runs,
                                "reprocess_behavior": "none"}
        if conf is not None:
            body["dag_run_conf"] = conf
        return self.request("POST", "/api/v2/backfills", json=body).json()

    # -- pools ------------------------------------------------------------------------------------

    def ensure_pool(self, name: str, slots: int, description: str = "") -> dict[str, Any]:
        """Create pool ``name`` with ``slots``, or set the slots of the existing one."""
        r = self.request("GET", f"/api/v2/pools/{_q(name)}", ok=(200, 404))
        if r.status_code == 404:
            return self.request("POST", "/api/v2/pools", ok=(200, 201),
                                json={"name": name, "slots": slots, "description": description}).json()
        return self.request("PATCH", f"/api/v2/pools/{_q(name)}", json={"name": name, "slots": slots}).json()

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        r = self.request("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
                                f"/logs/{try_number}", ok=(200, 404), headers={"Accept": "text/plain"})
        return r.text
