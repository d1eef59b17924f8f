"""Run in a fresh subprocess: parse one DAG file the way Airflow's dag-processor does and print one
JSON line with the timings.

Airflow itself is imported before the clock starts (the dag-processor's parent already has it
imported when it forks a parser); everything the DAG file imports beyond that — chronon_airflow,
its operators — is counted, as it is on every real re-parse. ``parse_s`` is ``BundleDagBag``
construction (import + DAG objects, what ``DagBag`` does); ``serialize_s`` is the
``DagSerialization.to_dict`` per DAG that the dag-processor does next before sending DAGs to the
scheduler. ``_AIRFLOW_PARSING_CONTEXT_DAG_ID`` in the environment makes it a task-start parse, in a
process prepared as a task process is (:func:`_task_process_imports`).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time


def _task_process_imports() -> None:
    """What a task process already has imported when it parses the DAG file.

    With the LocalExecutor the task process is forked from the scheduler: it has the scheduler and
    executor modules, the task runner, the providers list and the plugins (ours imports the
    batch-job sensor, trigger, hook and backend client for its extra link). This reproduces a
    subset of that, about 1,700 of the ~1,950 modules such a process holds;
    ``tests/test_e2e.py::test_bench_task_start_context_is_what_a_real_task_process_has`` checks
    the subset against a task process of the live stack. Everything the DAG file imports beyond it
    is counted, as a real task start pays it.
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


def main(dag_file: str) -> int:
    wall0 = float(os.environ.get("_BENCH_SPAWNED_AT", time.time()))
    import airflow  # noqa: F401  (outside the measured span, as in the dag-processor)
    import airflow.sdk  # noqa: F401

    if os.environ.get("_AIRFLOW_PARSING_CONTEXT_DAG_ID"):
        _task_process_imports()
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.serialization.serialized_objects import DagSerialization

    t0 = time.perf_counter()
    bag = BundleDagBag(dag_folder=dag_file, bundle_path=os.path.dirname(dag_file), bundle_name="bench",
                       load_op_links=False)
    t1 = time.perf_counter()
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    t2 = time.perf_counter()
    out = {
        "parse_s": t1 - t0,
        "serialize_s": t2 - t1,
        "dags": len(bag.dags),
        "tasks": sum(len(d.task_dict) for d in bag.dags.values()),
        "edges": sum(len(t.downstream_task_ids) for d in bag.dags.values() for t in d.tasks),
        "import_errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "wall_s": time.time() - wall0,
    }
    print("BENCH_RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--modules":
        print(json.dumps(loaded_modules()))
        sys.exit(0)
    sys.exit(main(sys.argv[1]))
