"""Shared test setup. Airflow reads AIRFLOW_HOME at import time, so it is set before anything else."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="chronon-airflow-test-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(_HOME / "dags"))
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
# The venv's bin (spark-submit, airflow) must be on PATH for subprocesses, activated or not.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

import pytest  # noqa: E402

from tests.support.paths import CONFIGS, REFERENCE  # noqa: E402


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata DB, once per test session (about 4 s)."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy())
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def configs_repo() -> Path:
    return CONFIGS


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh parse cache for this test (and no task-start parsing context left over)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", str(path))
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", raising=False)
    return path


@pytest.fixture(scope="session")
def reference_repo() -> Path:
    if not (REFERENCE / "teams.json").exists():
        pytest.skip(f"the shared Chronon reference repo is not at {REFERENCE}")
    return REFERENCE
