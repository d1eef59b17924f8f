"""One real stack for the end-to-end and browser tests (a pytest plugin: ``pytest_plugins =
["live_stack"]`` in both modules registers it once, so the session fixture starts one stack).

The stack is the demo's (:mod:`chronon_demo.stack`): Airflow's api-server, scheduler,
dag-processor and triggerer as separate processes with SQLite and LocalExecutor, the reference
model backend with its admin (fault) endpoints, and an aiosmtpd server that this fixture runs
itself on loopback. It reads a copy of ``configs/`` with one broken compiled file added, so the
config-errors DAG and the Chronon page have something to list. Task retries wait 5 s (not 5
minutes), and the landing deadline of join DAGs is a few seconds after a scheduled run is queued, so
the scheduled run that unpausing a join DAG creates (the sample data has no partition for it) misses it.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from chronon_demo.client import AirflowClient
from chronon_demo.mail import start_sink
from chronon_demo.run import DATA_START, join_dag_id, join_tables, start_stack
from chronon_demo.stack import Stack, StackConfig, free_port
from tests.support.paths import ARTIFACTS, CONFIGS, DAGS, TEST_DATA

OK_JOIN = "search.query_relevance.v1"  # runs end to end, chains its GroupBy upload
FAIL_JOIN = "risk.txn_fraud.v1"  # its batch job is made to fail through the backend's admin API
E2E_START, E2E_END = "2024-04-20", "2024-04-21"
BROWSER_DS = "2024-04-18"  # the browser test's run never overlaps the end-to-end runs
# Days of the other end-to-end runs (all inside the sample data, none overlapping another's).
BACKFILL_DAYS = ("2024-04-16", "2024-04-17")  # a 2-day Airflow backfill of OK_JOIN
REFUSED_BACKFILL_DAYS = ("2024-04-14", "2024-04-15")  # a backfill given a conf range: refused
RETRY_DS = "2024-04-16"  # FAIL_JOIN's batch job fails once, the task's retry recovers
LATE_DS = "2024-04-22"  # no sample data until the triggerer-restart test lands it
RETRY_DELAY = 5
LANDING_DEADLINE_HOURS = "0.001"
BROKEN_PATH = "production/joins/search/broken_join.v1"
CONFIG_ERRORS_DAG = "chronon.config_errors"
TASK_MODULES_DAG = "task_modules_probe"  # tests/data/task_modules_dag.py


@dataclass
class LiveStack:
    stack: Stack
    client: AirflowClient
    repo: Path
    mail_dir: Path

    @property
    def warehouse(self) -> Path:
        return self.stack.warehouse


def _dags_folder(dest: Path) -> Path:
    """The project's DAG file itself (a symlink) and the task-modules probe DAG beside it."""
    dest.mkdir()
    (dest / "chronon_dags.py").symlink_to(DAGS / "chronon_dags.py")
    shutil.copy(TEST_DATA / "task_modules_dag.py", dest)
    return dest


def _repo_with_broken_file(dest: Path) -> Path:
    shutil.copytree(CONFIGS, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # Truncated JSON: the loader reports (path, <file>, invalid JSON ...) and loads everything else.
    (dest / BROKEN_PATH).write_text('{"metaData": {"name": "search.broken_join.v1", "team": "search"')
    return dest


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory):
    from chronon_local_engine import sample_data

    root = tmp_path_factory.mktemp("live-stack")
    repo = _repo_with_broken_file(root / "repo")
    mail_dir = root / "mail"
    smtp_port = free_port()
    smtp = start_sink("127.0.0.1", smtp_port, mail_dir)
    config = StackConfig(workspace=root / "workspace", repo_path=repo, smtp_port=smtp_port,
                         enable_backend_admin=True, dags_folder=_dags_folder(root / "dags"),
                         retry_delay=RETRY_DELAY,
                         extra_env={"AIRFLOW__CHRONON__LANDING_DEADLINE_HOURS": LANDING_DEADLINE_HOURS})
    t0 = time.monotonic()
    sample_data.generate(Stack(config).warehouse, DATA_START, E2E_END)
    dag_ids = [join_dag_id(OK_JOIN), join_dag_id(FAIL_JOIN), CONFIG_ERRORS_DAG, TASK_MODULES_DAG,
               *join_tables(repo, OK_JOIN).group_by_dag_ids]
    stack = None
    try:
        stack, client = start_stack(config, dag_ids, log=print)
        print(f"live stack ready in {time.monotonic() - t0:.0f}s: {stack.ui_url}")
        yield LiveStack(stack=stack, client=client, repo=repo, mail_dir=mail_dir)
    finally:
        if stack is not None:
            stack.stop()
            # Kept for a look after a failure: the whole workspace is under pytest's tmp dir.
            logs = ARTIFACTS / "live-stack-logs"
            shutil.rmtree(logs, ignore_errors=True)
            shutil.copytree(stack.logs_dir, logs, dirs_exist_ok=True)
            if (stack.airflow_home / "logs").is_dir():
                shutil.copytree(stack.airflow_home / "logs", logs / "tasks", dirs_exist_ok=True)
        smtp.stop()

