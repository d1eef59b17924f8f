"""CLI subcommands for a model backend: ``register`` and ``infer`` (CHIP-9's analyzer and fetcher
steps, for local iteration). The reference backend service adds ``backend serve|init-models|openapi``
when its extra is installed (``chronon_reference_backend.cli``).

Backend URL for ``register``/``infer`` (first that applies):
1. ``--backend-url URL``;
2. environment ``CHRONON_BACKEND_URL_<NAME>`` (backend name upper-cased, non-alphanumerics -> ``_``),
   e.g. ``CHRONON_BACKEND_URL_REFERENCE=http://127.0.0.1:8765``;
3. the backend's Airflow connection (``chronon_backend_<name>`` by default; see
   ``chronon_airflow.settings.backend_conn_id``), e.g. ``AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE``.

The join-level calls (registerModelTransform, runModelInference) go to the backend the join's DAG
uses: :attr:`JoinConf.transform_backend` of the join loaded as the DAG file loads it
(``customJson.model_transform_backend``, else its first model's backend); ``--backend`` picks another
of the join's backends. ``register`` sends the calls through the routine the operators use
(:mod:`chronon_airflow.backend.registration`).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from chronon_airflow import naming, settings
from chronon_airflow.backend.http import HttpModelBackend
from chronon_airflow.backend.interface import BackendError
from chronon_airflow.backend.redact import redact_text, secret_values
from chronon_airflow.backend.registration import REGISTER_MODEL_TRANSFORM, register_join
from chronon_airflow.config.model import JoinConf

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


def load_join(name: str, repo: str | None) -> JoinConf:
    """The compiled join ``name`` (metaData.name) of the repo, loaded as the DAG file loads it."""
    from chronon_airflow.config import load_repo

    root = Path(repo) if repo else settings.repo_path()
    loaded = load_repo(root)
    if name not in loaded.joins:
        problems = [str(e) for e in loaded.errors if name.replace(".", "/") in e.path or name in e.path]
        hint = f"; config errors: {problems}" if problems else ""
        raise SystemExit(f"join {name!r} is not in {root}/production/joins (joins: {sorted(loaded.joins)}){hint}")
    return loaded.joins[name]


def transform_backend(join: JoinConf, override: str | None) -> str:
    """The backend of the join-level calls: the plan's rule (:attr:`JoinConf.transform_backend`,
    what the DAG's tasks use), unless ``--backend`` names another backend of the join's models."""
    if join.transform_backend is None:
        raise ValueError(f"join {join.name!r} has no modelTransforms")
    if override is None:
        return join.transform_backend
    if override not in join.backends:
        raise ValueError(f"join {join.name!r} has no model on backend {override!r}; its backends are "
                         f"{list(join.backends)}")
    return override


def cmd_register(args: argparse.Namespace) -> int:
    conf = load_join(args.join, args.repo)
    if not conf.has_model_transforms:
        print(f"join {args.join} has no modelTransforms: nothing to register", file=sys.stderr)
        return EXIT_FAIL
    try:
        backend = transform_backend(conf, args.backend)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    # The one registration routine the operators and the team upload use: models, then the transform.
    steps = register_join(conf.thrift(), backend, lambda b: client_for(b, args.backend_url))
    for step in steps:
        print(f"{'OK  ' if step.ok else 'FAIL'} {step}", flush=True)
    if not all(step.ok for step in steps):
        if not any(step.call == REGISTER_MODEL_TRANSFORM for step in steps):
            print(f"skipping registerModelTransform of {args.join}: a model was rejected", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


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
    conf = load_join(args.join, args.repo)
    join = conf.thrift()
    rows = _read_inputs(args.input)
    try:
        backend = transform_backend(conf, args.backend)
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
        p.add_argument("--backend", help="another of the join's model backends for the join-level call (default: "
                                         "the one its DAG uses: customJson.model_transform_backend, else its "
                                         "first model's)")
        if name == "infer":
            p.add_argument("--input", required=True, help="JSON object/list of rows, or a file holding it")
        p.set_defaults(func=func)
