"""Airflow's worker log server on loopback addresses only.

``airflow celery worker`` and ``airflow triggerer`` start a log server that listens on every
interface; the distributed topology starts them with ``--skip-serve-logs`` and runs this one
instead: the same app (``airflow.utils.serve_logs.log_server``, JWT-checked with ``[api]
secret_key``) serving the shared log folder, bound to each given address on one port, so the API
server finds the log of a running task at ``http://<its worker's hostname>:<port>/log/...``.

    python -m chronon_demo.logserver --port P --host 127.0.0.1 --host 127.0.0.2 ...
"""
from __future__ import annotations

import argparse
import socket


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chronon_demo.logserver", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", action="append", required=True, help="a loopback address (repeatable)")
    args = p.parse_args(argv)
    for host in args.host:
        if not host.startswith("127."):
            p.error(f"--host {host}: only loopback addresses (127.0.0.0/8)")

    import uvicorn
    from airflow.utils.serve_logs.log_server import get_app

    sockets = []
    for host in args.host:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, args.port))
        s.listen(64)
        s.set_inheritable(True)
        sockets.append(s)
    config = uvicorn.Config(get_app(), log_level="warning", access_log=False, log_config=None)
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
