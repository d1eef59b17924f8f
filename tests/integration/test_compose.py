"""docker-compose.yaml and Dockerfile: valid compose, and in agreement with what the package reads.

There is no Docker engine here. The file is validated with Debian's ``docker-compose config``
(``apt-get install -y docker-compose``) when installed, and always against the Compose
Specification JSON schema shipped in tests/data (copied from Debian's docker-compose 1.29.2,
``compose/config/compose_spec.json``).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from chronon_airflow import provider, settings

from tests.support.paths import PROJECT_ROOT as ROOT, TEST_DATA
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = TEST_DATA / "compose_spec.json"
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init"}
REQUIRED = AIRFLOW_SERVICES | {"postgres", "redis", "chronon-backend", "mailpit"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(value):
    """Compose's ``${NAME:-default}`` with nothing set in the environment, and ``$$`` -> ``$``."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the <<: merge keys


@pytest.fixture(scope="module")
def services(raw) -> dict:
    return _interpolate(raw["services"])


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def _conn(env: dict[str, str], conn_id: str) -> dict:
    return json.loads(env["AIRFLOW_CONN_" + conn_id.upper()])


def _container_ports(service: dict) -> dict[int, int]:
    """container port -> host port of the published ports."""
    out = {}
    for p in service.get("ports") or []:
        host, _, container = str(p).rpartition(":")
        out[int(container)] = int(host) if host else int(container)
    return out


def _mount(service: dict, target: str) -> str | None:
    for v in service.get("volumes") or []:
        parts = str(v).split(":")
        if len(parts) >= 2 and parts[1] == target:
            return parts[0]
    return None


# -- validity -----------------------------------------------------------------------------------

def test_matches_the_compose_spec_schema(raw):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft201909Validator(schema).validate(raw)
    # The check can fail: a misspelt service key is rejected.
    broken = copy.deepcopy(raw)
    broken["services"]["redis"]["healthcheks"] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(schema).validate(broken)


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose is not installed (apt-get install -y docker-compose)")
def test_docker_compose_config_accepts_it(tmp_path):
    proc = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)
    assert REQUIRED <= set(resolved["services"])
    # And it rejects a broken file, so a pass means something.
    bad = tmp_path / "docker-compose.yaml"
    bad.write_text(COMPOSE.read_text().replace("condition: service_healthy", "condition: [not, a, string]", 1))
    assert subprocess.run(["docker-compose", "-f", str(bad), "config"], capture_output=True, timeout=120,
                          cwd=ROOT).returncode != 0


# -- the official Airflow shape -----------------------------------------------------------------

def test_official_airflow_shape(raw, services):
    assert "x-airflow-common" in raw
    assert REQUIRED <= set(services)
    for name in AIRFLOW_SERVICES:
        s = services[name]
        assert s["build"] == ".", name  # every Airflow component runs this project's image
        assert _env(s)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
    assert services["airflow-worker"]["command"] == "celery worker"
    commands = {services[n]["command"] for n in AIRFLOW_SERVICES - {"airflow-init", "airflow-worker"}}
    assert commands == {"api-server", "scheduler", "dag-processor", "triggerer"}
    assert _env(services["airflow-init"])["_AIRFLOW_DB_MIGRATE"] == "true"
    for n in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[n]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_no_port_8080_and_api_port_consistent(services):
    env = _env(services["airflow-apiserver"])
    port = int(env["AIRFLOW__API__PORT"])
    assert port != 8080
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{port}/execution/"
    assert port in _container_ports(services["airflow-apiserver"])
    assert f"localhost:{port}/" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    for s in services.values():
        assert 8080 not in _container_ports(s) and 8080 not in _container_ports(s).values()


def test_mounts_dags_plugins_configs(services):
    for name in AIRFLOW_SERVICES:
        s = services[name]
        assert _mount(s, "/opt/airflow/dags") == "./dags", name
        assert _mount(s, "/opt/airflow/plugins") == "./plugins", name
        assert _mount(s, _env(s)["AIRFLOW__CHRONON__REPO_PATH"]) == "./configs", name
    assert (ROOT / "plugins" / "chronon_plugin.py").exists() and (ROOT / "configs" / "teams.json").exists()


# -- agreement with the package -----------------------------------------------------------------

def test_chronon_settings_are_ones_the_package_reads(services):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        keys = {k[len("AIRFLOW__CHRONON__"):].lower() for k in env if k.startswith("AIRFLOW__CHRONON__")}
        assert {"repo_path", "warehouse"} <= keys, name
        assert keys <= set(settings.DEFAULTS), f"{name}: unknown [chronon] keys {keys - set(settings.DEFAULTS)}"
        assert env.get("AIRFLOW__CHRONON__SPARK_CONN_ID", settings.DEFAULTS["spark_conn_id"]) == \
            settings.DEFAULTS["spark_conn_id"]


def test_connections_point_at_the_services(services):
    from airflow.models.connection import Connection

    from chronon_airflow.hooks.model_backend import client_kwargs
    from chronon_airflow.spark.job import SparkConnection

    backend = services["chronon-backend"]
    args = _backend_serve_args(backend)
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        env = _env(services[name])
        # The model backend: the id the package derives for backend "reference", reaching chronon-backend.
        conn_id = settings.backend_conn_id("reference")
        spec = _conn(env, conn_id)
        assert spec["conn_type"] == provider.CONN_TYPE
        conn = Connection(conn_id=conn_id, **{k: (json.dumps(v) if k == "extra" else v) for k, v in spec.items()})
        assert client_kwargs(conn)["base_url"] == f"http://chronon-backend:{args.port}"
        assert spec.get("password") is None  # no secret in a committed file
        # Its job link targets the port published on the host, the browser's side.
        job_url = spec["extra"]["job_url_template"]
        assert job_url.startswith(f"http://localhost:{_container_ports(backend)[args.port]}/")
        # Spark: the id the package reads, local master as the native run.
        spark = _conn(env, settings.DEFAULTS["spark_conn_id"])
        assert SparkConnection.from_airflow(spark["conn_type"], spark["host"], spark.get("port"),
                                            spark.get("extra")).master == "local[*]"
        # SMTP: Airflow's default id, to mailpit's SMTP port.
        smtp = _conn(env, "smtp_default")
        assert smtp["host"] == "mailpit" and smtp["port"] == 1025
        assert env["AIRFLOW__EMAIL__EMAIL_CONN_ID"] == "smtp_default"
    assert 1025 in [int(p) for p in services["mailpit"]["expose"]]
    assert 8025 in _container_ports(services["mailpit"])


def _backend_serve_args(backend: dict) -> argparse.Namespace:
    """chronon-backend's command parsed by the real CLI's parser (unknown flags fail here)."""
    from chronon_reference_backend.cli import add_backend_subcommands

    command = backend["command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    prefixes = (["chronon-airflow", "backend"], ["python", "-m", "chronon_reference_backend"])
    prefix = next((p for p in prefixes if argv[:len(p)] == p), None)
    assert prefix and argv[len(prefix)] == "serve", argv
    parser = argparse.ArgumentParser()
    add_backend_subcommands(parser.add_subparsers(dest="cmd", required=True))
    return parser.parse_args(argv[len(prefix):])


def test_backend_service_shares_the_warehouse(services):
    backend = services["chronon-backend"]
    args = _backend_serve_args(backend)
    assert args.host == "0.0.0.0"  # inside its container, reachable from the other services
    assert args.port in _container_ports(backend)
    assert f"localhost:{args.port}/healthz" in " ".join(backend["healthcheck"]["test"])
    warehouse = _env(services["airflow-worker"])["AIRFLOW__CHRONON__WAREHOUSE"]
    assert args.warehouse == warehouse
    volume = _mount(backend, warehouse)
    assert volume and not volume.startswith(".")  # a named volume ...
    for name in AIRFLOW_SERVICES:
        assert _mount(services[name], warehouse) == volume, name  # ... mounted everywhere Spark runs
    assert _mount(backend, args.home) and _mount(backend, args.repo) == "./configs"


# -- the image ----------------------------------------------------------------------------------

def test_dockerfile():
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert lines[0] == "FROM apache/airflow:3.3.2"
    users = [ln for ln in lines if ln.startswith("USER ")]
    assert users[0] == "USER root" and users[-1] == "USER airflow"
    root_part = "\n".join(lines[lines.index("USER root"):lines.index("USER airflow")])
    assert "openjdk-17-jre-headless" in root_part
    copies = [ln for ln in lines if ln.startswith(("COPY", "ADD"))]
    sources = {tok for ln in copies for tok in ln.split()[1:-1] if not tok.startswith("--")}
    assert sources == {"pyproject.toml", "README.md", "chronon_airflow", "chronon_local_engine",
                       "chronon_reference_backend"}
    assert any(ln.startswith("RUN pip install") and "/opt/chronon-airflow" in ln for ln in lines)
    ignore = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert ignore[0] == "*"  # the build context holds only what is re-included below
    assert {"!pyproject.toml", "!README.md", "!chronon_airflow/", "!chronon_local_engine/",
            "!chronon_reference_backend/"} <= set(ignore)
