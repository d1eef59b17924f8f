"""ModelBackendHook: a CHIP-9 model backend behind an Airflow connection.

Convention: model backend ``<name>`` (``inferenceSpec.modelBackend`` in a config) uses the
connection id ``chronon.settings.backend_conn_id(name)`` — ``chronon_backend_<name>`` unless
``[chronon] backend_conn_ids`` / ``backend_conn_id_template`` say otherwise. The connection gives
the URL (``extra.base_url``, or ``schema``://``host``:``port``), an optional bearer token
(``password``) and client tuning in ``extra`` (timeout, connect_timeout, max_attempts, backoff_max).
"""
from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from chronon_airflow import provider, settings
from chronon_airflow.backend.http import AsyncHttpModelBackend, HttpModelBackend
from chronon_airflow.exceptions import ChrononAirflowError


class ModelBackendConnectionMissing(AirflowException, ChrononAirflowError):
    """The backend has no Airflow connection: a deployment setting, reported with the id to create."""


def _missing(backend: str | None, conn_id: str) -> ModelBackendConnectionMissing:
    who = f"model backend {backend!r}" if backend else "the model backend"
    env = "AIRFLOW_CONN_" + conn_id.upper()
    return ModelBackendConnectionMissing(
        f"{who} has no Airflow connection: expected connection id {conn_id!r} (create it in the UI with "
        f"type {provider.CONN_TYPE!r}, or set {env}, or map the backend to another id with "
        "[chronon] backend_conn_ids)")


def client_kwargs(conn: Any) -> dict[str, Any]:
    """HTTP client settings from an Airflow Connection (shared by the hook and the trigger)."""
    extra = conn.extra_dejson or {}
    base_url = extra.get("base_url")
    if not base_url:
        if not conn.host:
            raise AirflowException(f"connection {conn.conn_id!r} has neither host nor extra.base_url")
        host = conn.host.rstrip("/")
        if "://" in host:
            base_url = host if not conn.port else f"{host}:{conn.port}"
        else:
            scheme = conn.schema if conn.schema in ("http", "https") else "http"
            base_url = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    kwargs: dict[str, Any] = {"base_url": base_url, "token": conn.password or None}
    for key, cast in (("timeout", float), ("connect_timeout", float), ("max_attempts", int),
                      ("backoff_initial", float), ("backoff_max", float)):
        if extra.get(key) not in (None, ""):
            kwargs[key] = cast(extra[key])
    return kwargs


class ModelBackendHook(BaseHook):
    conn_name_attr = "model_backend_conn_id"
    default_conn_name = "chronon_backend_reference"
    conn_type = provider.CONN_TYPE
    hook_name = provider.HOOK_NAME

    def __init__(self, backend: str | None = None, model_backend_conn_id: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.backend = backend
        if model_backend_conn_id:
            self.model_backend_conn_id = model_backend_conn_id
        elif backend:
            self.model_backend_conn_id = settings.backend_conn_id(backend)
        else:
            raise ValueError("ModelBackendHook needs a backend name or a model_backend_conn_id")

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        b = provider.UI_FIELD_BEHAVIOUR
        return {"hidden_fields": b["hidden-fields"], "relabeling": b["relabeling"], "placeholders": b["placeholders"]}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """wtforms widgets for the legacy (FAB) form; Airflow 3.2+ reads ``conn-fields`` instead and
        ships no wtforms, so without it there is nothing to build."""
        try:
            from wtforms import IntegerField, StringField
        except ImportError:
            return {}
        fields: dict[str, Any] = {}
        for name, spec in provider.CONN_FIELDS.items():
            field = IntegerField if "integer" in spec["schema"]["type"] else StringField
            fields[name] = field(spec["label"], description=spec.get("description", ""))
        return fields

    def connection_kwargs(self) -> dict[str, Any]:
        try:
            conn = self.get_connection(self.model_backend_conn_id)
        except AirflowNotFoundException:
            raise _missing(self.backend, self.model_backend_conn_id) from None
        return client_kwargs(conn)

    def get_conn(self) -> HttpModelBackend:
        """A blocking client; close it (or use ``with``) when done."""
        return HttpModelBackend(**self.connection_kwargs())

    async def aget_conn(self) -> AsyncHttpModelBackend:
        """An asyncio client, resolving the connection without blocking the event loop."""
        try:
            conn = await self.aget_connection(self.model_backend_conn_id)
        except AirflowNotFoundException:
            raise _missing(self.backend, self.model_backend_conn_id) from None
        return AsyncHttpModelBackend(**client_kwargs(conn))

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: the backend must answer its OpenAPI document."""
        import httpx

        kwargs = self.connection_kwargs()
        try:
            response = httpx.get(kwargs["base_url"].rstrip("/") + "/openapi.json", timeout=10)
        except httpx.HTTPError as e:
            return False, f"cannot reach {kwargs['base_url']}: {e}"
        if response.status_code != 200:
            return False, f"{kwargs['base_url']}/openapi.json answered HTTP {response.status_code}"
        return True, f"model backend at {kwargs['base_url']} is up"
