"""``python -m chronon_demo run|stop|status`` (``make demo`` / ``make demo-stop``)."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from chronon_airflow import settings
from chronon_demo.run import DEMO_END, DEMO_JOIN, DEMO_START, run_demo
from chronon_demo.stack import DEFAULT_WORKSPACE, Stack, StackError


def _stop(workspace: Path) -> int:
    state = Stack.read_state(workspace)
    if not state:
        print(f"no demo state in {workspace}: nothing to stop")
        return 0
    pids = ", ".join(f"{p['name']}={p['pid']}" for p in state.get("processes", []))
    print(f"stopping the demo stack of {workspace} ({pids}) ...", flush=True)
    n = Stack.stop_state(state)
    print(f"stopped {n} process(es)" if n else "nothing was running")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m chronon_demo", description=__doc__)
    p.add_argument("--workspace", type=Path, default=DEFAULT_WORKSPACE, help=f"default {DEFAULT_WORKSPACE}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="start the stack, run the sample join and its chained GroupBy, summarise")
    r.add_argument("--repo", type=Path, default=settings.PROJECT_ROOT / "configs")
    r.add_argument("--join", default=DEMO_JOIN)
    r.add_argument("--start", default=DEMO_START)
    r.add_argument("--end", default=DEMO_END)
    r.add_argument("--distributed", action="store_true",
                   help="the distributed topology: CeleryExecutor (Redis) with one worker per queue, "
                        "PostgreSQL, a Spark standalone cluster (see chronon_demo/distributed.py)")
    r.add_argument("--foreground", action="store_true",
                   help="after the summary, stay in the foreground and stop everything on Ctrl-C")
    r.add_argument("--fail-batch-job", nargs="?", const="once", choices=["once", "always"], default=None,
                   help="make the model backend fail the join's batch job: 'once' (the default) shows the "
                        "task's own retry submitting a new job; 'always' fails the run and e-mails the team "
                        "the recovery action (then: python -m chronon_demo recover)")
    sub.add_parser("stop", help="stop every process the demo started (by PID)")
    sub.add_parser("recover", help="after run --fail-batch-job always: lift the injected failure, clear the "
                                   "failed batch task (a new job is submitted) and follow the run")
    sub.add_parser("status", help="is a demo running, where, which PIDs")
    args = p.parse_args(argv)
    workspace = args.workspace.resolve()

    if args.command == "stop":
        return _stop(workspace)
    if args.command == "recover":
        from chronon_demo.run import recover

        return recover(workspace)
    if args.command == "status":
        state = Stack.running_state(workspace)
        if not state:
            print(f"no demo running from {workspace}")
            return 1
        print(f"demo running ({state.get('topology', 'local')} topology): UI {state['ui_url']} "
              f"(login {state['user']} / {state['password']})")
        for proc in state["processes"]:
            print(f"  {proc['name']:<8} pid {proc['pid']}  log {proc['log']}")
        return 0

    # SIGTERM (e.g. from a CI runner) behaves like Ctrl-C: stop what we started.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    try:
        rc = run_demo(workspace, args.repo.resolve(), args.join, args.start, args.end,
                      distributed=args.distributed, fail_batch_job=args.fail_batch_job)
        if args.foreground:
            print("Press Ctrl-C to stop the stack.", flush=True)
            while True:
                time.sleep(3600)
        return rc
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the demo started", flush=True)
        _stop(workspace)
        return 130
    except (StackError, TimeoutError, RuntimeError) as e:
        print(f"\ndemo failed: {e}", file=sys.stderr, flush=True)
        if Stack.running_state(workspace):
            print(f"the stack is left running for inspection (logs in {workspace / 'logs'}); "
                  "stop it with `make demo-stop`", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
