"""Run in a fresh subprocess: parse DAG files the way Airflow's dag-processor does and print one
JSON line per file with the timings.

Airflow itself is imported before any clock starts (the dag-processor's manager has it imported
when it forks a parser), and so are the ``airflow.*`` modules a file imports (the manager's
``parsing_pre_import_modules``); then each file is parsed in its own fork of this process, as the
dag-processor does, so everything else the DAG file imports — chronon_airflow, its operators — is
counted for every file, as it is on every real parse. ``parse_s`` is
``BundleDagBag`` construction (import + DAG objects, what ``DagBag`` does); ``serialize_s`` is the
``DagSerialization.to_dict`` per DAG that the dag-processor does next before sending DAGs to the
manager; ``peak_rss_mb`` the fork's peak RSS. ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` in the environment
makes it a task-start parse of one file, in this process, prepared as a task process is
(:func:`_task_process_imports`).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def _task_process_imports() -> None:
    """What a task process already has imported when it parses the DAG file.

    With the LocalExecutor the task process is forked from the scheduler: it has the scheduler and
    executor modules, the task runner, the providers list and the plugins (ours imports the
    batch-job sensor, trigger, hook and backend client for its extra link). This reproduces a
    subset of that, about 1,700 of the ~1,950 modules such a process holds;
    ``tests/e2e/test_live_stack.py::test_bench_task_start_context_is_what_a_real_task_process_has``
    checks the subset against a task process of the live stack. Everything the DAG file imports
    beyond it is counted, as a real task start pays it.
    """
    import airflow.executors.local_executor  # noqa: F401
    import airflow.jobs.scheduler_job_runner  # noqa: F401
    import airflow.sdk.execution_time.task_runner  # noqa: F401
    from airflow import plugins_manager
    from airflow.providers_manager import ProvidersManager

    ProvidersManager().initialize_providers_list()
    plugins_manager.ensure_plugins_loaded()


def loaded_modules() -> list[str]:
    """``python -m chronon_bench.parse_probe --modules``: the task-start context's modules."""
    _task_process_imports()
    # Not the probe itself, nor runpy (``python -m`` loads it before any of this runs).
    return sorted(m for m in sys.modules if not m.startswith(("chronon_bench", "__")) and m != "runpy")


def parse(dag_file: str) -> dict:
    """Parse and serialize one file in this process; the result as a dict."""
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.serialized_objects import DagSerialization

    w0 = time.time()
    t0 = time.perf_counter()
    bag = BundleDagBag(dag_folder=dag_file, bundle_path=Path(os.path.dirname(dag_file)), bundle_name="bench",
                       load_op_links=False)
    t1 = time.perf_counter()
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    t2 = time.perf_counter()
    return {
        "file": os.path.basename(dag_file),
        "parse_s": t1 - t0,
        "serialize_s": t2 - t1,
        "dags": len(bag.dags),
        "tasks": sum(len(d.task_dict) for d in bag.dags.values()),
        "edges": sum(len(t.downstream_task_ids) for d in bag.dags.values() for t in d.tasks),
        "import_errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "wall_s": time.time() - w0,
    }


def _forked(dag_file: str) -> dict:
    """:func:`parse` in a fork of this process (a dag-processor parses each file in a fork)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: parse, report, exit without running the parent's cleanup
        code = 0
        try:
            out = parse(dag_file)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out, code = {"file": os.path.basename(dag_file), "error": repr(e)}, 1
        data = json.dumps(out).encode()
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data) if data else {"file": os.path.basename(dag_file), "error": "no output"}


def main(dag_files: list[str]) -> int:
    wall0 = float(os.environ.get("_BENCH_SPAWNED_AT", time.time()))
    import airflow  # noqa: F401  (outside the measured span, as in the dag-processor)
    import airflow.sdk  # noqa: F401
    from airflow.dag_processing.dagbag import BundleDagBag  # noqa: F401
    from airflow.serialization.serialized_objects import DagSerialization  # noqa: F401

    if os.environ.get("_AIRFLOW_PARSING_CONTEXT_DAG_ID"):
        _task_process_imports()
        out = parse(dag_files[0])
        out["wall_s"] = time.time() - wall0
        print("BENCH_RESULT " + json.dumps(out), flush=True)
        return 0
    for f in dag_files:
        _pre_import(f)
        print("BENCH_RESULT " + json.dumps(_forked(f)), flush=True)
    return 0


def _pre_import(dag_file: str) -> None:
    """What the dag-processor does before it forks the parser of a file: import the ``airflow.*``
    modules the file imports ([dag_processor] parsing_pre_import_modules, on by default), so they
    are imported once per processor, not once per parse. Done for every side alike."""
    import logging

    from airflow.dag_processing.processor import _pre_import_airflow_modules

    # It only calls log.warning(fmt, *args), which a stdlib logger has as well as structlog's.
    _pre_import_airflow_modules(dag_file, logging.getLogger("chronon_bench"))  # type: ignore[arg-type]


if __name__ == "__main__":
    if sys.argv[1] == "--modules":
        print(json.dumps(loaded_modules()))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
