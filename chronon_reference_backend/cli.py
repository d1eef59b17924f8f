"""``backend serve|init-models|openapi``: the reference model backend's subcommands.

Added to ``chronon-airflow`` through the ``chronon_airflow.cli`` entry point when the ``backend``
extra is installed, and runnable alone as ``python -m chronon_reference_backend``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL = 0, 1


def cmd_serve(args: argparse.Namespace) -> int:
    from chronon_reference_backend.server import serve

    serve(host=args.host, port=args.port, home=args.home, warehouse=args.warehouse,
          enable_admin=args.enable_admin, repo=Path(args.repo) if args.repo else None, workers=args.workers)
    return EXIT_OK


def cmd_init_models(args: argparse.Namespace) -> int:
    from chronon_reference_backend.server import init_models

    created = init_models(Path(args.home).resolve(), Path(args.repo) if args.repo else None, overwrite=args.force)
    for path in created:
        print(path)
    if not created:
        print("no reference-backend models found", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_openapi(args: argparse.Namespace) -> int:
    from chronon_reference_backend.server import openapi_document, write_openapi

    if args.out == "-":
        print(json.dumps(openapi_document(), indent=2, sort_keys=True))
    else:
        print(write_openapi(Path(args.out)) if args.out else write_openapi())
    return EXIT_OK


def add_backend_subcommands(sub: Any) -> None:
    """``serve``, ``init-models`` and ``openapi`` (under ``backend`` in the main CLI)."""
    from chronon_reference_backend.server import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser("serve", help="run the reference model backend (FastAPI + uvicorn)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST}, loopback only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--home", help="SQLite file, model artifacts and default warehouse (default $CHRONON_BACKEND_HOME "
                                  "or ./.chronon/backend)")
    p.add_argument("--warehouse", help="parquet warehouse root (default $CHRONON_WAREHOUSE, else <home>/warehouse)")
    p.add_argument("--repo", help="compiled repo whose reference models get demo artifacts on an empty home "
                                  "(default: the project's configs/)")
    p.add_argument("--workers", type=int, default=2, help="batch jobs run at once")
    p.add_argument("--enable-admin", action="store_true",
                   help="serve /admin/faults and /admin/jobs (fault injection; also CHRONON_BACKEND_ENABLE_ADMIN=1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("init-models", help="create demo model artifacts for every reference-backend model")
    p.add_argument("--home", required=True)
    p.add_argument("--repo", help="compiled repo to scan (default: the project's configs/)")
    p.add_argument("--force", action="store_true", help="refit and overwrite existing artifacts")
    p.set_defaults(func=cmd_init_models)

    p = sub.add_parser("openapi", help="write the contract's OpenAPI document (default: the one kept in the repo)")
    p.add_argument("--out", help="file to write, '-' for stdout")
    p.set_defaults(func=cmd_openapi)




def add_subcommands(subparsers: Any) -> None:
    """Entry point ``chronon_airflow.cli``: ``chronon-airflow backend ...``."""
    p = subparsers.add_parser("backend", help="the reference model backend service")
    add_backend_subcommands(p.add_subparsers(dest="backend_command", required=True))
