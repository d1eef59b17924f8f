"""The wheel as production installs it: built from this checkout, installed into a fresh venv with
its runtime dependencies only (no extra), pinned by ``constraints/airflow-<x.y>.txt``, for every
Airflow minor release the package supports. There the DAG file loads with Airflow's ``DagBag``,
the plugin and the trigger modules import, and nothing from the tools' extras is installed or
imported.

The venvs live in the test's tmp folder; pip's own cache makes a second run cheap (about a minute
per Airflow version on a 2-core machine with a warm cache).
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.specifiers import SpecifierSet

from tests.support.paths import CONFIGS, DAGS, PLUGINS, PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CONSTRAINTS = PROJECT_ROOT / "constraints"
AIRFLOW_MINORS = sorted(p.stem.removeprefix("airflow-") for p in CONSTRAINTS.glob("airflow-*.txt"))

# Distributions only the extras bring (engine, backend, demo, lineage, dev): a runtime install has none.
# (pandas, pyarrow and numpy are not here: the Spark provider's pyspark-client requires them;
# fastapi, uvicorn and psutil come with apache-airflow-core.)
EXTRA_ONLY_DISTS = {
    "pyspark", "scikit-learn", "scipy", "aiosmtpd", "apache-airflow-providers-celery", "celery",
    "psycopg2-binary", "asyncpg", "pytest", "playwright", "apache-airflow-providers-openlineage",
}
# Modules the product must not import when the DAG file, plugin, operators, sensors and triggers load.
NEVER_IMPORTED = {
    "pandas", "pyarrow", "pyspark", "numpy", "sklearn", "aiosmtpd", "uvicorn", "celery",
    "openlineage", "chronon_local_engine", "chronon_reference_backend", "chronon_demo", "chronon_bench",
}

PROBE = r"""
import importlib, importlib.util, json, sys
from airflow.dag_processing.dagbag import DagBag
import airflow

bag = DagBag(dag_folder=sys.argv[1])
spec = importlib.util.spec_from_file_location("chronon_plugin", sys.argv[2])
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
modules = ["chronon_airflow.triggers.model_batch_job", "chronon_airflow.triggers.partition",
           "chronon_airflow.sensors.partition", "chronon_airflow.sensors.model_batch_job",
           "chronon_airflow.operators.chronon_spark", "chronon_airflow.operators.model_backend",
           "chronon_airflow.operators.metadata_upload", "chronon_airflow.operators.streaming_keeper",
           "chronon_airflow.operators.config_errors", "chronon_airflow.notifications.failure",
           "chronon_airflow.hooks.model_backend", "chronon_airflow.provider"]
for m in modules:
    importlib.import_module(m)
from airflow.triggers.base import BaseTrigger

triggers = sorted(f"{c.__module__}.{c.__name__}" for m in modules if ".triggers." in m
                  for c in vars(sys.modules[m]).values()
                  if isinstance(c, type) and issubclass(c, BaseTrigger) and c.__module__ == m)
print(json.dumps({
    "airflow": airflow.__version__,
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "plugin": plugin.ChrononPlugin.name,
    "plugin_apps": [a["name"] for a in plugin.ChrononPlugin.fastapi_apps],
    "triggers": triggers,
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, \
        f"{' '.join(map(str, cmd))} exited {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def _source_copy(dest: Path) -> Path:
    """What the wheel is built from: pyproject, the README and the packages it lists. A copy, so the
    build leaves no build/ or egg-info in the checkout (and picks up no stale build/lib)."""
    meta = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    include = meta["tool"]["setuptools"]["packages"]["find"]["include"]
    dest.mkdir()
    for name in ("pyproject.toml", meta["project"]["readme"]):
        shutil.copy2(PROJECT_ROOT / name, dest / name)
    for d in sorted(PROJECT_ROOT.iterdir()):
        if d.is_dir() and (d / "__init__.py").exists() and any(fnmatch.fnmatch(d.name, p) for p in include):
            shutil.copytree(d, dest / d.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("packaging-build")
    src = _source_copy(work / "src")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(src)])
    (whl,) = (work / "dist").glob("chronon_airflow-*.whl")
    return whl


def test_constraints_cover_at_least_two_airflow_minors():
    assert len(AIRFLOW_MINORS) >= 2, AIRFLOW_MINORS
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (airflow_req,) = [d for d in deps if d.startswith("apache-airflow") and d[len("apache-airflow")] in "<>=!~ "]
    supported = SpecifierSet(airflow_req[len("apache-airflow"):])
    for minor in AIRFLOW_MINORS:
        pins = (CONSTRAINTS / f"airflow-{minor}.txt").read_text().splitlines()
        (airflow,) = [p.split("==")[1] for p in pins if p.startswith("apache-airflow==")]
        assert airflow.startswith(f"{minor}.") and supported.contains(airflow), (minor, airflow, airflow_req)
        assert not any(p.lower().startswith("chronon-airflow") for p in pins)


@pytest.mark.parametrize("minor", AIRFLOW_MINORS)
def test_runtime_install_loads_the_dags(minor, wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py, pip = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m", "pip"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    _run([*pip, "install", "-q", str(wheel), "-c", str(CONSTRAINTS / f"airflow-{minor}.txt")], env=env)
    _run([*pip, "check"], env=env)

    listed = json.loads(_run([*pip, "list", "--format", "json"], env=env).stdout)
    installed = {d["name"].lower(): d["version"] for d in listed}
    assert installed["apache-airflow"].startswith(f"{minor}."), installed["apache-airflow"]
    assert "fastapi" in installed, "the plugin page needs FastAPI, which apache-airflow-core provides"
    assert not EXTRA_ONLY_DISTS & installed.keys(), sorted(EXTRA_ONLY_DISTS & installed.keys())

    home = tmp_path / "airflow-home"
    home.mkdir()
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CHRONON__REPO_PATH": str(CONFIGS),
        # The Chronon jar engine: no local engine (pyspark) is needed to build the Spark tasks.
        "AIRFLOW__CHRONON__ENGINE": "jar",
        "AIRFLOW__CHRONON__CHRONON_JAR": "/opt/chronon.jar",
    })
    # Outside the checkout, so the installed package is imported, not the source tree.
    probe = _run([str(py), "-c", PROBE, str(DAGS / "chronon_dags.py"), str(PLUGINS / "chronon_plugin.py")],
                 env=env, cwd=tmp_path)
    out = json.loads(probe.stdout.strip().splitlines()[-1])
    assert out["airflow"] == installed["apache-airflow"]
    assert out["import_errors"] == {}

    # The CLI works without the tools' extras and offers none of their subcommands.
    usage = _run([str(venv / "bin" / "chronon-airflow"), "--help"], env=env, cwd=tmp_path).stdout
    commands = set(re.search(r"\{([^}]*)\}", usage).group(1).split(","))
    assert {"plan", "validate"} <= commands and not {"backend", "sample-data"} & commands, commands
    # The DAGs are exactly those of the plan that the installed CLI prints for the same deployment.
    plan = json.loads(_run([str(venv / "bin" / "chronon-airflow"), "plan", "--json", "--repo", str(CONFIGS)],
                           env=env, cwd=tmp_path).stdout)
    assert out["dag_ids"] == sorted(d["dag_id"] for d in plan["dags"])
    assert {"chronon.join_backfill.search.query_relevance.v1",
            "chronon.group_by_upload.search.query_embedding_stats.v1"} <= set(out["dag_ids"])

    assert out["plugin"] == "chronon" and out["plugin_apps"] == ["Chronon"]
    assert {t.rsplit(".", 1)[0] for t in out["triggers"]} == {
        "chronon_airflow.triggers.model_batch_job", "chronon_airflow.triggers.partition"}
    assert not NEVER_IMPORTED & set(out["modules"]), sorted(NEVER_IMPORTED & set(out["modules"]))
