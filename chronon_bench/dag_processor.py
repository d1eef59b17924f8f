"""The real ``airflow dag-processor`` end to end: from its start until every DAG of a DAGs folder is
in a fresh metadata DB.

Default Airflow settings (``dagbag_import_timeout`` 30 s, ``dag_file_processor_timeout`` 50 s)
but ``[dag_processor] parsing_processes`` (2 by default here, as the issue's machine) and the
SQLite DB of a fresh ``airflow db migrate`` (made once, copied per run). The harness polls the DB
for the number of distinct dag_ids in ``serialized_dag`` and samples the RSS of the processor's
process tree (the manager and its parser forks): the peak of their sum is ``peak_rss_mb``. The
processor is started in its own session and stopped by its process group id (SIGTERM, then SIGKILL).
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def migrated_db(work: Path, env: dict[str, str]) -> Path:
    """A freshly migrated SQLite metadata DB (made once per work folder)."""
    db = work / "template_airflow.db"
    if db.exists():
        return db
    home = work / "template_home"
    home.mkdir(parents=True, exist_ok=True)
    e = dict(env, AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}")
    subprocess.run([AIRFLOW, "db", "migrate"], env=e, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=600)
    shutil.copy(home / "airflow.db", db)
    return db


def _count(db: Path) -> tuple[int, int]:
    """(DAGs serialized, import errors) in ``db``; (-1, -1) while it cannot be read."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0) as c:
            dags = c.execute("select count(distinct dag_id) from serialized_dag").fetchone()[0]
            errors = c.execute("select count(*) from import_error").fetchone()[0]
            return dags, errors
    except sqlite3.Error:
        return -1, -1


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total / 1024 / 1024


def run(dags_folder: Path, expected: int, work: Path, name: str, env: dict[str, str], template_db: Path,
        parsing_processes: int = 2, timeout: float = 900.0, log=print) -> dict[str, Any]:
    """Start ``airflow dag-processor`` on ``dags_folder`` with a fresh copy of ``template_db``; return
    the seconds until ``expected`` DAGs are serialized (``None`` if not within ``timeout``), the
    peak RSS of its process tree, the import errors and what the manager's log says of timeouts."""
    home = work / f"e2e_{name}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    db = home / "airflow.db"
    shutil.copy(template_db, db)
    e = dict(env)
    for k in list(e):
        # Airflow's defaults, as the issue measured: no shortened timeouts from the parse probes.
        if k in ("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT"):
            del e[k]
    e.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": str(parsing_processes),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    })
    log_path = home / "dag-processor.log"
    t0 = time.perf_counter()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([AIRFLOW, "dag-processor"], env=e, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=str(home))
    done_s = None
    peak = 0.0
    dags = errors = 0
    try:
        while time.perf_counter() - t0 < timeout:
            peak = max(peak, _tree_rss_mb(proc.pid))
            dags, errors = _count(db)
            if dags >= expected:
                done_s = time.perf_counter() - t0
                break
            if proc.poll() is not None:
                break
            time.sleep(0.25)
    finally:
        _stop(proc)
    text = log_path.read_text(errors="replace")
    result = {"seconds": done_s, "dags": dags, "expected": expected, "import_errors": errors,
              "peak_rss_mb": peak, "timeouts": text.count("timed out") + text.count("DagBag import timeout"),
              "log": str(log_path)}
    log(f"  dag-processor {name}: {dags}/{expected} DAGs in "
        f"{f'{done_s:.1f} s' if done_s is not None else f'NOT within {timeout:.0f} s'}, peak RSS {peak:.0f} MB, "
        f"{errors} import errors")
    return result


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the processor's own process group (it was started in its own session, so the
    group is the manager and its parser forks), SIGKILL to what is left after 20 s."""
    def signal_group(sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    signal_group(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    signal_group(signal.SIGKILL)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
