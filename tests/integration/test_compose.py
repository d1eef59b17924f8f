"""docker-compose.yaml and Dockerfile: valid compose, in agreement with what the package reads, and
with the native distributed topology (chronon_demo/distributed.py): both take executor, connections,
queues and [chronon] settings from chronon_demo/topology.py, compared here key by key.

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

import jsonschema
import pytest
import yaml

from chronon_airflow import provider, settings
from tests.support.paths import PROJECT_ROOT as ROOT
from tests.support.paths import TEST_DATA

COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = TEST_DATA / "compose_spec.json"
WORKERS = {"airflow-worker", "airflow-worker-chronon-risk"}  # one Celery worker per queue
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-init"} | WORKERS
SPARK_SERVICES = {"spark-master", "spark-worker-1", "spark-worker-2"}
REQUIRED = AIRFLOW_SERVICES | SPARK_SERVICES | {"postgres", "redis", "chronon-backend", "mailpit"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def _interpolate(value):
    """Compose's ``${NAME:-default}`` with nothing set in the environment, and ``$$`` -> ``$``."""
    if isinstance(value, str):
        # "$$" is an escaped "$" (a shell variable for the container), never the start of "${...}".
        parts = value.split("$$")
        return "$".join(_VAR.sub(lambda m: m.group(2) or "", part) for part in parts)
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


def _published(service: dict) -> dict[int, tuple[str, int]]:
    """container port -> (host address, host port) of the published ports ("" = every interface)."""
    out = {}
    for p in service.get("ports") or []:
        parts = str(p).split(":")
        container = int(parts[-1])
        host_port = int(parts[-2]) if len(parts) >= 2 else container
        out[container] = (parts[-3] if len(parts) == 3 else "", host_port)
    return out


def _container_ports(service: dict) -> dict[int, int]:
    """container port -> host port of the published ports."""
    return {c: host_port for c, (_, host_port) in _published(service).items()}


def _exposed(service: dict) -> set[int]:
    return {int(p) for p in service.get("expose") or []}


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
    assert services["airflow-worker-chronon-risk"]["command"] == "celery worker --queues chronon_risk"
    commands = {services[n]["command"] for n in AIRFLOW_SERVICES - {"airflow-init"} - WORKERS}
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
        # The backend is not published (no authentication): no job link pretends to reach it from the host.
        assert "job_url_template" not in (spec.get("extra") or {})
        # Spark: the id the package reads, the standalone master of the spark-master service.
        spark = _conn(env, settings.DEFAULTS["spark_conn_id"])
        assert SparkConnection.from_airflow(spark["conn_type"], spark["host"], spark.get("port"),
                                            spark.get("extra")).master == f"spark://spark-master:{_spark_args(services['spark-master']).port}"
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
    assert args.port in _exposed(backend) and not _container_ports(backend)
    assert f"localhost:{args.port}/healthz" in " ".join(backend["healthcheck"]["test"])
    warehouse = _env(services["airflow-worker"])["AIRFLOW__CHRONON__WAREHOUSE"]
    assert args.warehouse == warehouse
    volume = _mount(backend, warehouse)
    assert volume and not volume.startswith(".")  # a named volume ...
    for name in AIRFLOW_SERVICES | SPARK_SERVICES:
        assert _mount(services[name], warehouse) == volume, name  # ... mounted everywhere Spark runs
    assert _mount(backend, args.home) and _mount(backend, args.repo) == "./configs"


# -- the Spark standalone cluster -----------------------------------------------------------------

def _spark_args(service: dict) -> argparse.Namespace:
    """A spark service's ``spark-class`` command line (inside its ``bash -c``), parsed."""
    command = service["command"]
    assert command[:2] == ["bash", "-c"], command
    argv = shlex.split(command[2])
    assert argv[0] == "exec" and argv[1].endswith("/bin/spark-class"), argv
    assert "import os, pyspark" in argv[1]  # pyspark's own launcher, as the native topology
    p = argparse.ArgumentParser()
    p.add_argument("main_class")
    p.add_argument("master", nargs="?")
    for flag in ("--host", "--webui-port", "--cores", "--memory", "--work-dir"):
        p.add_argument(flag)
    p.add_argument("--port", type=int)
    return p.parse_args(argv[2:])


def test_spark_cluster(services):
    master = _spark_args(services["spark-master"])
    assert master.main_class == "org.apache.spark.deploy.master.Master"
    assert master.host == services["spark-master"]["hostname"] == "spark-master"
    assert int(master.webui_port) in _exposed(services["spark-master"])
    assert int(master.webui_port) != 8080
    assert f"localhost:{master.webui_port}/" in " ".join(services["spark-master"]["healthcheck"]["test"])
    assert "spark.master.rest.enabled=false" in _env(services["spark-master"])["SPARK_MASTER_OPTS"]
    for name in SPARK_SERVICES - {"spark-master"}:
        worker = _spark_args(services[name])
        assert worker.main_class == "org.apache.spark.deploy.worker.Worker"
        assert worker.master == f"spark://spark-master:{master.port}", name
        assert services[name]["hostname"] == name
        assert services[name]["depends_on"]["spark-master"]["condition"] == "service_healthy"


# -- agreement with the native distributed topology ----------------------------------------------

@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """The native topology's stack (nothing started: its state and environment only)."""
    from chronon_demo.distributed import DistributedConfig, DistributedStack

    stack = DistributedStack(DistributedConfig(workspace=tmp_path_factory.mktemp("native")), log=lambda _: None)
    stack.state = stack.new_state()
    return stack


def _worker_queues(service: dict) -> list[str]:
    argv = shlex.split(service["command"])
    assert argv[:2] == ["celery", "worker"], argv
    if "--queues" in argv:
        return argv[argv.index("--queues") + 1].split(",")
    return ["default"]  # [operators] default_queue


def test_shared_settings_are_the_same_key_by_key(raw, native):
    from chronon_demo import topology

    compose = {k: str(v) for k, v in _interpolate(raw["x-airflow-common"]["environment"]).items()}
    env = native.airflow_env()
    for key, value in topology.SHARED_ENV.items():
        assert compose.get(key, "").lower() == value.lower(), f"docker-compose.yaml: {key}"
        assert env.get(key, "").lower() == value.lower(), f"native: {key}"
    for key, prefix in topology.DEPLOYMENT_ENV.items():
        for where, e in (("docker-compose.yaml", compose), ("native", env)):
            assert e.get(key), f"{where} does not set {key}"
            assert e[key].startswith(prefix), f"{where}: {key}={e[key]!r} does not start with {prefix!r}"
    # Every [chronon] setting either side sets is a shared or a per-deployment one: a new one
    # cannot be added to one side only.
    known = set(topology.SHARED_ENV) | set(topology.DEPLOYMENT_ENV)
    for where, e in (("docker-compose.yaml", compose), ("native", env)):
        chronon = {k for k in e if k.startswith("AIRFLOW__CHRONON__")}
        assert chronon <= known, f"{where} sets [chronon] keys topology.py does not define: {chronon - known}"
    assert {k for k in compose if k.startswith("AIRFLOW__CHRONON__")} == \
        {k for k in env if k.startswith("AIRFLOW__CHRONON__")}
    # Secrets: the native ones are generated per stack, never the compose defaults.
    assert "airflow:airflow@" not in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_connections_agree(raw, native):
    from chronon_airflow.spark.job import SparkConnection
    from chronon_demo import topology

    compose = {k: str(v) for k, v in _interpolate(raw["x-airflow-common"]["environment"]).items()}
    env = native.airflow_env()
    wanted = {topology.conn_env_key(c) for c in topology.CONNECTIONS}
    assert {k for k in compose if k.startswith("AIRFLOW_CONN_")} == wanted
    assert {k for k in env if k.startswith("AIRFLOW_CONN_")} == wanted
    for conn_id, (conn_type, extra) in topology.CONNECTIONS.items():
        for where, e in (("docker-compose.yaml", compose), ("native", env)):
            spec = json.loads(e[topology.conn_env_key(conn_id)])
            assert spec["conn_type"] == conn_type, (where, conn_id)
            for key, value in extra.items():
                assert spec.get("extra", {}).get(key) == value, (where, conn_id, key)
            if conn_id == topology.SPARK_CONN_ID:
                master = SparkConnection.from_airflow(spec["conn_type"], spec["host"], spec.get("port"),
                                                      spec.get("extra")).master
                assert master.startswith(topology.SPARK_MASTER_SCHEME), (where, master)
    assert json.loads(env[topology.conn_env_key(topology.SPARK_CONN_ID)])["host"] == \
        f"spark://127.0.0.1:{native.state['ports']['spark-master']}"


def test_queues_agree(services, native):
    from chronon_demo import topology
    from tests.support.paths import CONFIGS

    queues = topology.worker_queues(CONFIGS)
    assert topology.DEFAULT_QUEUE in queues and len(queues) >= 2  # a team has a queue of its own
    compose_workers = {n: _worker_queues(s) for n, s in services.items()
                       if isinstance(s.get("command"), str) and s["command"].startswith("celery worker")}
    assert set(compose_workers) == WORKERS
    assert all(len(q) == 1 for q in compose_workers.values())  # one worker per queue, as natively
    assert sorted(q for qs in compose_workers.values() for q in qs) == sorted(queues)
    assert sorted(w["queue"] for w in native.workers.values()) == sorted(queues)
    # The executor is the same everywhere, and the default queue is Airflow's.
    for name in AIRFLOW_SERVICES:
        assert _env(services[name])["AIRFLOW__CORE__EXECUTOR"] == topology.EXECUTOR
        assert _env(services[name])["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == topology.DEFAULT_QUEUE


def test_spark_cluster_agrees(services, native):
    c = native.config
    workers = [_spark_args(services[n]) for n in sorted(SPARK_SERVICES - {"spark-master"})]
    assert len(workers) == c.spark_workers
    for w in workers:
        assert (int(w.cores), w.memory) == (c.spark_worker_cores, c.spark_worker_memory)


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


def test_only_the_airflow_ui_and_mailpits_ui_are_published_and_on_loopback(services):
    """The reference backend (unauthenticated, with an admin API), mailpit's SMTP, the Spark master,
    Redis and PostgreSQL stay inside the compose network; the two UIs listen on the host's loopback."""
    published = {name: _published(s) for name, s in services.items() if _published(s)}
    api_port = int(_env(services["airflow-apiserver"])["AIRFLOW__API__PORT"])
    assert published == {"airflow-apiserver": {api_port: ("127.0.0.1", api_port)},
                         "mailpit": {8025: ("127.0.0.1", 8025)}}


def test_init_creates_the_chronon_spark_pool(services):
    env = _env(services["airflow-init"])
    name, slots = env["AIRFLOW__CHRONON__SPARK_POOL"], env["AIRFLOW__CHRONON__SPARK_POOL_SLOTS"]
    assert name == settings.DEFAULTS["spark_pool"] and int(slots) > 0
    script = services["airflow-init"]["command"][-1]
    assert 'airflow pools set "${AIRFLOW__CHRONON__SPARK_POOL}" "${AIRFLOW__CHRONON__SPARK_POOL_SLOTS}"' in script
