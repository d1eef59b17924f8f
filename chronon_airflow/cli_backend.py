"""CLI subcommands for a model backend: ``register`` and ``infer`` (CHIP-9's analyzer and fetcher
steps, for local iteration). The reference backend service adds ``backend serve|init-models|openapi``
when its extra is installed (``chronon_reference_backend.cli``).

Backend URL for ``register``/``infer`` (first that applies):
1. ``--backend-url URL``;
2. environment ``CHRONON_BACKEND_URL_<NAME>`` (backend name upper-cased, non-alphanumerics -> ``_``),
   e.g. ``CHRONON_BACKEND_URL_REFERENCE=http://127.0.0.1:8765``;
3. the backend's Airflow connection (``chronon_backend_<name>`` by default; see
   ``chronon_airflow.settings.backend_conn_id``), e.g. ``AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from chronon_airflow import naming, settings
from chronon_airflow.backend import join_models
from chronon_airflow.backend.http import HttpModelBackend
from chronon_airflow.backend.interface import BackendError
from chronon_airflow.backend.redact import redact_text, secret_values

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def backend_url_env(backend: str) -> str:
    return "CHRONON_BACKEND_URL_" + naming.sanitize(backend).upper()


def client_for(backend: str, url: str | None) -> HttpModelBackend:
    """A client for ``backend`` following the precedence in the module docstring."""
    url = url or os.environ.get(backend_url_env(backend))
    if url:
        return HttpModelBackend(url)
    conn_id = settings.backend_conn_id(backend)
    try:
        from chronon_airflow.hooks.model_backend import ModelBackendHook
    except ImportError as e:  # Airflow not installed in this environment
        raise SystemExit(f"no URL for model backend {backend!r}: pass --backend-url or set "
                         f"{backend_url_env(backend)} ({e})") from None
    try:
        return ModelBackendHook(backend, conn_id).get_conn()
    except Exception as e:
        raise SystemExit(f"no URL for model backend {backend!r}: pass --backend-url, set {backend_url_env(backend)}, "
                         f"or define the Airflow connection {conn_id!r} ({e})") from None


def load_join(name: str, repo: str | None) -> dict[str, Any]:
    """The compiled join ``name`` (metaData.name) of the repo, as its thrift-JSON dict."""
    from chronon_airflow.config import load_repo

    root = Path(repo) if repo else settings.repo_path()
    loaded = load_repo(root)
    if name not in loaded.joins:
        problems = [str(e) for e in loaded.errors if name.replace(".", "/") in e.path or name in e.path]
        hint = f"; config errors: {problems}" if problems else ""
        raise SystemExit(f"join {name!r} is not in {root}/production/joins (joins: {sorted(loaded.joins)}){hint}")
    return loaded.joins[name].thrift()


def _print_result(call: str, subject: str, backend: str, ok: bool, status: str, message: str) -> None:
    print(f"{'OK  ' if ok else 'FAIL'} {call} {subject} on {backend}: {status} {message}".rstrip(), flush=True)


def cmd_register(args: argparse.Namespace) -> int:
    join = load_join(args.join, args.repo)
    secrets = secret_values(join)
    if "modelTransforms" not in join:
        print(f"join {args.join} has no modelTransforms: nothing to register", file=sys.stderr)
        return EXIT_FAIL
    failed = False
    try:
        for model in join_models.models(join):
            backend = join_models.model_backend(model)
            with client_for(backend, args.backend_url) as client:
                r = client.register_model(model)
            _print_result("registerModel", join_models.model_name(model), backend, r.is_success, r.status,
                          redact_text(r.message, secrets))
            failed |= not r.is_success
        if failed:
            print(f"skipping registerModelTransform of {args.join}: a model was rejected", file=sys.stderr)
            return EXIT_FAIL
        backend = join_models.resolve_join_backend(join, args.backend)
        with client_for(backend, args.backend_url) as client:
            r = client.register_model_transform(join)
        _print_result("registerModelTransform", args.join, backend, r.is_success, r.status,
                      redact_text(r.message, secrets))
        return EXIT_OK if r.is_success else EXIT_FAIL
    except BackendError as e:
        print(f"error: {redact_text(str(e), secrets)}", file=sys.stderr)
        return EXIT_FAIL
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _read_inputs(value: str) -> list[dict[str, Any]]:
    path = Path(value)
    text = path.read_text() if not value.lstrip().startswith(("{", "[")) and path.exists() else value
    try:
        data = json.loads(text)
    except ValueError as e:
        raise SystemExit(f"--input is neither a JSON document nor a readable JSON file: {e}") from None
    rows = [data] if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SystemExit("--input must be a JSON object or a list of objects (rows keyed by raw-join column)")
    return rows


def cmd_infer(args: argparse.Namespace) -> int:
    join = load_join(args.join, args.repo)
    rows = _read_inputs(args.input)
    try:
        backend = join_models.resolve_join_backend(join, args.backend)
        with client_for(backend, args.backend_url) as client:
            outputs = client.run_model_inference(join, rows)
    except BackendError as e:
        print(f"error: {redact_text(str(e), secret_values(join))}", file=sys.stderr)
        return EXIT_FAIL
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(outputs, indent=2))
    return EXIT_OK


def add_subcommands(subparsers: Any) -> None:
    """Called by ``chronon_airflow.cli``: adds ``register`` and ``infer``."""
    for name, func, help_text in (
        ("register", cmd_register, "registerModel for each model of a join, then registerModelTransform"),
        ("infer", cmd_infer, "runModelInference on a join's model transforms"),
    ):
        p = subparsers.add_parser(name, help=help_text)
        p.add_argument("--join", required=True, help="the join's metaData.name, e.g. search.query_relevance.v1")
        p.add_argument("--repo", help="compiled Chronon repo (default: [chronon] repo_path or the project's configs/)")
        p.add_argument("--backend-url", help="backend base URL; else $CHRONON_BACKEND_URL_<NAME>, else the Airflow "
                                             "connection of the backend")
        p.add_argument("--backend", help="for a join mixing model backends: which one runs its transform")
        if name == "infer":
            p.add_argument("--input", required=True, help="JSON object/list of rows, or a file holding it")
        p.set_defaults(func=func)
