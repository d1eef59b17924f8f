"""Hardening fixtures: the corpus repo built and loaded once per session (DagBag, CLI, plugin page)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import PROJECT_ROOT

from .corpus import PWNED_FILES, Case, build_corpus_repo

CLI = str(Path(sys.executable).parent / "chronon-airflow")


@contextmanager
def env(**values: str | None) -> Iterator[None]:
    """Set (or with None, unset) environment variables for the block; session fixtures cannot use
    monkeypatch."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class Corpus:
    root: Path
    cases: list[Case]
    bag: Any  # DagBag
    validate: subprocess.CompletedProcess
    plan_json: subprocess.CompletedProcess
    summary: dict
    summary_text: str
    html: str

    @property
    def errors_dag(self):
        return self.bag.dags["chronon.config_errors"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, env=e)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    """One repo holding configs/ and every case, read once by each consumer."""
    from airflow.dag_processing.dagbag import DagBag
    from starlette.testclient import TestClient

    from chronon_airflow.plugin import page

    for f in PWNED_FILES:
        f.unlink(missing_ok=True)
    root = tmp_path_factory.mktemp("corpus") / "repo"
    cases = build_corpus_repo(root)
    with env(AIRFLOW__CHRONON__REPO_PATH=str(root)):
        bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"), safe_mode=False)
        validate = _cli("validate", "--repo", str(root))
        plan_json = _cli("plan", "--json", "--repo", str(root))
        page.app.dependency_overrides[page.require_reader] = lambda: None
        try:
            client = TestClient(page.app)
            r = client.get("/api/summary")
            assert r.status_code == 200, r.text
            h = client.get("/")
            assert h.status_code == 200, h.text
        finally:
            page.app.dependency_overrides.clear()
    return Corpus(root, cases, bag, validate, plan_json, r.json(), r.text, h.text)


@pytest.fixture(scope="session")
def configs_dag_ids() -> set[str]:
    """What the project's own configs/ generate: all of it must survive the corpus."""
    from chronon_airflow.config import load_repo
    from chronon_airflow.plan import build_plan

    return {d.dag_id for d in build_plan(load_repo(PROJECT_ROOT / "configs")).dags}


def dump(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
