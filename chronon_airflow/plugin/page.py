"""The "Chronon" page: what the configured repo holds and which DAGs it generates.

Served by the API server as a FastAPI sub-app under ``/chronon`` (``/chronon/`` HTML,
``/chronon/api/summary`` JSON) and shown in the nav through an external view. Server-rendered
HTML without a template engine: every value comes from config files, which may be hostile, so
each one goes through ``html.escape`` and nothing is ever rendered by Jinja. A strict
Content-Security-Policy (no scripts at all) backs the escaping up.

Access: the same rule as Airflow's import-errors view (config errors are import errors of the
generated DAGs), checked with Airflow's own auth manager on the session cookie or bearer token.
"""
from __future__ import annotations

import html
import logging
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from chronon_airflow import settings
from chronon_airflow.backend.redact import redact

log = logging.getLogger(__name__)

URL_PREFIX = "/chronon"
SECURITY_HEADERS = {
    # No script may run, whatever slips into the markup; the page is framed only by Airflow's UI.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


async def require_reader(request: Request) -> None:
    """Allow users who may read import errors; 401 without credentials, 403 without the right.

    Airflow's security module is imported here, not at module import, so workers that load the
    plugin for its macros never import the API server's auth stack.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials

    bearer = None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip())
    user = await get_user(request, None, bearer)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.IMPORT_ERRORS, user=user):
        raise HTTPException(status_code=403, detail="Forbidden")


# -- data ---------------------------------------------------------------------------------------

def _backend_endpoint(conn_id: str) -> dict[str, Any]:
    """Whether the backend's connection resolves and its URL without credentials. Never the token
    (the connection's password) nor user info embedded in a URL."""
    from chronon_airflow.links.model_backend import safe_http_url

    try:
        from airflow.models.connection import Connection

        from chronon_airflow.hooks.model_backend import client_kwargs

        conn = Connection.get_connection_from_secrets(conn_id)
        return {"configured": True, "url": safe_http_url(client_kwargs(conn)["base_url"])}
    except Exception as e:  # missing connection, no DB in a tool context, malformed extra
        return {"configured": False, "url": "", "problem": type(e).__name__}


class PlanCache:
    """The loaded repo and plan of each repo root, kept by one app (:func:`create_app`), not by the
    module: the page is served on every request, and loading and planning thousands of configs again
    is only needed when an input changed. An entry is reused while the parse-cache key of the repo
    (every compiled file's size and mtime, the deployment, the code) is the same; the lock makes
    concurrent requests after a change load the repo once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, Any, Any]] = {}

    def repo_and_plan(self, root: str) -> tuple[Any, Any]:
        from chronon_airflow.deployment import resolve_deployment
        from chronon_airflow.render.cache import snapshot

        deployment = resolve_deployment()
        key = snapshot(Path(root), deployment).key  # changes with any compiled file, setting or code change
        with self._lock:
            hit = self._entries.get(root)
            if hit is not None and hit[0] == key:
                return hit[1], hit[2]
            repo, plan = _load(root, deployment)
            self._entries[root] = (key, repo, plan)
            return repo, plan


def _load(root: str, deployment: Any = None) -> tuple[Any, Any]:
    from chronon_airflow.plan.load import load_plan

    return load_plan(root, deployment)


def build_summary(repo_path: str | None = None, resolve_connections: bool = True,
                  cache: PlanCache | None = None) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data (the ``/api/summary`` body). ``cache``:
    the app's :class:`PlanCache`; without one the repo is loaded afresh."""
    root = str(repo_path or settings.repo_path())
    try:
        repo, plan = cache.repo_and_plan(root) if cache is not None else _load(root)
    except Exception as e:  # an unreadable repo is one error on the page, not a 500
        log.exception("cannot load Chronon repo %s", root)
        return {"repo": root, "joins": [], "models": [], "backends": [], "tables": [], "dags": [],
                "errors": [{"path": root, "field": "", "message": f"cannot load the repo: {e}"}]}

    dags_by_conf: dict[str, list[str]] = defaultdict(list)
    for d in plan.dags:
        if d.conf_name:
            dags_by_conf[d.conf_name].append(d.dag_id)
        for name in d.members:  # team DAGs register member joins
            dags_by_conf[name].append(d.dag_id)

    joins, models = [], []
    backend_joins: dict[str, list[str]] = defaultdict(list)
    for join in sorted(repo.joins.values(), key=lambda j: j.name):
        joins.append({
            "name": join.name, "team": join.team, "path": join.path,
            "has_model_transforms": join.has_model_transforms,
            "models": [m.name for m in join.models], "backends": list(join.backends),
            "raw_join_table": join.raw_join_table, "output_table": join.output_table,
            "dag_ids": dags_by_conf.get(join.name, []),
        })
        for model in join.models:
            models.append({"name": model.name, "backend": model.backend, "join": join.name,
                           # Secret-looking params (api keys, tokens ...) are never shown.
                           "params": redact(dict(model.backend_params))})
        for backend in join.backends:
            backend_joins[backend].append(join.name)

    backends = []
    for name in sorted(backend_joins):
        conn_id = settings.backend_conn_id(name)
        entry = {"name": name, "conn_id": conn_id, "joins": backend_joins[name]}
        if resolve_connections:
            entry.update(_backend_endpoint(conn_id))
        backends.append(entry)

    readers: dict[str, set[str]] = defaultdict(set)
    writers: dict[str, set[str]] = defaultdict(set)
    for d in plan.dags:
        for t in d.reads:
            readers[t].add(d.dag_id)
        for t in d.writes:
            writers[t].add(d.dag_id)
    tables = [{"table": t, "written_by": sorted(writers[t]), "read_by": sorted(readers[t])}
              for t in sorted(set(readers) | set(writers))]

    dags = [{"dag_id": d.dag_id, "kind": d.kind, "team": d.team, "schedule": d.schedule,
             "source": d.source, "conf_name": d.conf_name} for d in plan.dags]
    return {"repo": root, "joins": joins, "models": models, "backends": backends, "tables": tables,
            "dags": dags, "errors": [e.to_dict() for e in plan.errors]}


# -- HTML ---------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def airflow_base(request: Request) -> str:
    """The Airflow UI's base path: this app is mounted at ``<base>/chronon``."""
    root = request.scope.get("root_path", "") or ""
    return root[: -len(URL_PREFIX)] if root.endswith(URL_PREFIX) else root


def dag_href(base: str, dag_id: str) -> str:
    return f"{base}/dags/{quote(dag_id, safe='')}"


def _dag_link(base: str, dag_id: str) -> str:
    # target=_top: the page is shown in Airflow's iframe; the DAG page must replace the whole UI.
    return f'<a href="{_e(dag_href(base, dag_id))}" target="_top">{_e(dag_id)}</a>'


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class=empty>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(values: list[str]) -> str:
    return ", ".join(_e(v) for v in values)


def _params(params: dict[str, Any]) -> str:
    return "<br>".join(f"<code>{_e(k)}</code>={_e(v)}" for k, v in sorted(params.items()))


def render_html(summary: dict[str, Any], base: str) -> str:
    """The page. Cells are built from already-escaped fragments; nothing raw reaches the markup."""
    errors = _table(["File", "Field", "Message"],
                    [[f"<code>{_e(e['path'])}</code>", f"<code>{_e(e['field'] or '<file>')}</code>",
                      _e(e["message"])] for e in summary["errors"]],
                    "No config errors.")
    dags = _table(["DAG", "Kind", "Team", "Schedule", "Config"],
                  [[_dag_link(base, d["dag_id"]), _e(d["kind"]), _e(d["team"]), _e(d["schedule"] or "manual"),
                    f"<code>{_e(d['source'])}</code>"] for d in summary["dags"]],
                  "No DAGs: no join has model transforms.")
    joins = _table(["Join", "Team", "Models", "Backends", "Output table", "DAGs"],
                   [[f"{_e(j['name'])}<br><small><code>{_e(j['path'])}</code></small>", _e(j["team"]),
                     _list(j["models"]) or "<i>none</i>", _list(j["backends"]), f"<code>{_e(j['output_table'])}</code>",
                     "<br>".join(_dag_link(base, d) for d in j["dag_ids"])] for j in summary["joins"]],
                   "No joins.")
    models = _table(["Model", "Backend", "Join", "Backend params"],
                    [[_e(m["name"]), _e(m["backend"]), _e(m["join"]), _params(m["params"])]
                     for m in summary["models"]], "No models.")
    backends = _table(["Backend", "Connection id", "URL", "Joins"],
                      [[_e(b["name"]), f"<code>{_e(b['conn_id'])}</code>",
                        _e(b.get("url") or ("missing connection" if b.get("configured") is False else "")),
                        _list(b["joins"])] for b in summary["backends"]], "No model backends.")
    tables = _table(["Table", "Written by", "Read by"],
                    [[f"<code>{_e(t['table'])}</code>", "<br>".join(_dag_link(base, d) for d in t["written_by"]),
                      "<br>".join(_dag_link(base, d) for d in t["read_by"])] for t in summary["tables"]],
                    "No tables.")
    n_err = len(summary["errors"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chronon</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a202c}}
table{{border-collapse:collapse;margin-bottom:1.5rem;width:100%}}
th,td{{border:1px solid #cbd5e0;padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}}
th{{background:#edf2f7}} .errors th{{background:#fed7d7}} .empty{{color:#718096}}
code{{font-size:.9em}}
</style></head><body>
<h1>Chronon</h1>
<p>Repo <code>{_e(summary['repo'])}</code>: {len(summary['joins'])} joins, {len(summary['models'])} models,
{len(summary['dags'])} generated DAGs, {n_err} config error{'s' if n_err != 1 else ''}.</p>
<h2 id="errors">Config errors</h2><div class="errors">{errors}</div>
<h2 id="dags">Generated DAGs</h2>{dags}
<h2 id="joins">Joins</h2>{joins}
<h2 id="models">Models</h2>{models}
<h2 id="backends">Model backends</h2>{backends}
<h2 id="tables">Tables</h2>{tables}
</body></html>
"""


def create_app() -> FastAPI:
    """The page's app. Its state (the :class:`PlanCache`) lives on the app: two apps share nothing."""
    app = FastAPI(title="Chronon", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_reader)])
    app.state.plan_cache = cache = PlanCache()

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        summary = build_summary(cache=cache)
        return HTMLResponse(render_html(summary, airflow_base(request)), headers=SECURITY_HEADERS)

    @app.get("/api/summary")
    def api_summary(request: Request) -> JSONResponse:
        summary = build_summary(cache=cache)
        base = airflow_base(request)
        for d in summary["dags"]:
            d["url"] = dag_href(base, d["dag_id"])
        return JSONResponse(summary, headers=SECURITY_HEADERS)

    return app


# The app the plugin mounts (plugins/chronon_plugin.py). Building it registers nothing anywhere and
# starts no work: the plan is loaded on the first request, into this app's own PlanCache.
app = create_app()
