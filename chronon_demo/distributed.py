"""The distributed topology, started natively: what ``docker-compose.yaml`` runs, as processes of
one workspace, tracked and stopped exactly like the local stack (:class:`~.stack.Stack`: the
marker in every environment, ``stack.json``, stop by PID + start time + descendants).

Processes (every one on loopback, on free ports):

=================  ============================================================================
``postgres``       PostgreSQL 15 (Debian's binaries) as the ``postgres`` system user, its own
                   data directory; the Airflow metadata DB and the Celery result backend
``redis``          the Celery broker (no persistence, a password)
``spark-master``   a Spark standalone master and ``spark-worker-N`` workers (pyspark's own
                   ``spark-class``); the Spark connection ``chronon_spark`` points at it
``backend``        the reference model backend; ``smtp`` the SMTP sink (unless the caller runs one)
``api-server``     ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer``
``worker-<queue>`` one ``airflow celery worker`` per queue of
                   :func:`~chronon_demo.topology.worker_queues` (Airflow's default queue and every
                   team's ``airflow_queue``), each with its own loopback address as hostname
``log-server``     Airflow's worker log server, on the workers' and the triggerer's addresses
=================  ============================================================================

Secrets (the DB and broker passwords, the Fernet key, the JWT and API secrets, the login) are in
``stack.json``, ``passwords.json`` and ``redis.conf``, all mode 0600, and in the processes'
environments; nothing else.

``fast_recovery`` (the end-to-end tests) shortens the heartbeat, task-heartbeat ("zombie") and
orphan checks, and caps task retry delays through a cluster policy in
``$AIRFLOW_HOME/config/airflow_local_settings.py``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from chronon_demo import topology
from chronon_demo.stack import (
    ADMIN_USER,
    Printer,
    Stack,
    StackConfig,
    StackError,
    _port_open,
    _print,
    free_port,
    tail,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"  # the system user PostgreSQL runs as (it refuses root)
DB_NAME = DB_USER = "airflow"
# Stop order: the Airflow components first, then Spark, then the broker and the database.
TIER_SERVICES, TIER_SPARK, TIER_AIRFLOW = 0, 1, 2


@dataclass
class DistributedConfig(StackConfig):
    spark_workers: int = 2
    spark_worker_cores: int = 1
    spark_worker_memory: str = "1g"
    worker_concurrency: int = 2
    # Test stack: short heartbeat/zombie/orphan timeouts and task retry delays capped at this
    # many seconds (None: Airflow's and the DAGs' own).
    fast_recovery: bool = False
    retry_delay_cap: int | None = None


def pyspark_home() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("pyspark is not installed: pip install -e '.[demo]'")
    return Path(list(spec.submodule_search_locations)[0])


def _free_on(hosts: list[str], avoid: set[int]) -> int:
    """A port free on every address in ``hosts`` (never 8080, never one in ``avoid``)."""
    while True:
        port = free_port(avoid=avoid)
        try:
            for host in hosts:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue


def db_url(state: dict[str, Any], password: bool = True, driver: str = "postgresql+psycopg2") -> str:
    pw = f":{state['db_password']}" if password else ""
    return f"{driver}://{DB_USER}{pw}@127.0.0.1:{state['ports']['postgres']}/{DB_NAME}"


def spark_master_url(state: dict[str, Any]) -> str:
    return f"spark://127.0.0.1:{state['ports']['spark-master']}"


class DistributedStack(Stack):
    """The distributed topology; see the module docstring."""

    config: DistributedConfig
    airflow_tier = TIER_AIRFLOW

    def __init__(self, config: DistributedConfig, log: Printer = _print):
        super().__init__(config, log)

    # -- layout ----------------------------------------------------------------------------------

    @property
    def spark_dir(self) -> Path:
        return self.workspace / "spark"

    def spark_work_dir(self, worker: str) -> Path:
        """A Spark worker's work dir: ``<application id>/<executor id>/stderr`` for each executor."""
        return self.spark_dir / worker

    @property
    def redis_dir(self) -> Path:
        return self.workspace / "redis"

    @property
    def pg_dir(self) -> Path:
        return Path(self.state["pg_dir"])

    @property
    def workers(self) -> dict[str, dict[str, str]]:
        """Celery worker process name -> {"queue", "hostname"}."""
        return self.state["workers"]

    def worker_for_hostname(self, hostname: str | None) -> str | None:
        return next((n for n, w in self.workers.items() if w["hostname"] == hostname), None)

    # -- state -----------------------------------------------------------------------------------

    def new_state(self) -> dict[str, Any]:
        state = super().new_state()
        c = self.config
        queues = topology.worker_queues(c.repo_path)
        # Each Celery worker gets an address of its own on 127.0.0.0/8 (127.0.0.2, .3, ...).
        workers = {f"worker-{q}": {"queue": q, "hostname": f"127.0.0.{i + 2}"} for i, q in enumerate(queues)}
        ports: set[int] = set(state["ports"].values())
        names = ["postgres", "redis", "spark-master", "spark-master-ui"]
        for i in range(1, c.spark_workers + 1):
            names += [f"spark-worker-{i}", f"spark-worker-{i}-ui"]
        for name in names:
            state["ports"][name] = free_port(avoid=ports)
        # The log server listens on the workers' and the triggerer's addresses, one port for all.
        state["ports"]["logs"] = _free_on(["127.0.0.1"] + [w["hostname"] for w in workers.values()], ports)
        state.update({
            "topology": "distributed",
            "workers": workers,
            "db_password": secrets.token_urlsafe(18),
            "redis_password": secrets.token_urlsafe(18),
            "api_secret_key": secrets.token_urlsafe(32),
        })
        return state

    def reset_workspace(self) -> None:
        previous = self.read_state(self.workspace) or {}
        super().reset_workspace()
        for sub in (self.spark_dir, self.redis_dir, self.workspace / "postgres"):
            shutil.rmtree(sub, ignore_errors=True)
        old_pg = previous.get("pg_dir")
        if old_pg and Path(old_pg).name.startswith("chronon-pg-"):
            shutil.rmtree(old_pg, ignore_errors=True)

    # -- environments ------------------------------------------------------------------------------

    def airflow_env(self) -> dict[str, str]:
        c, st, ports = self.config, self.state, self.state["ports"]
        env = super().airflow_env()
        for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            env.pop(key, None)
        env.update(topology.SHARED_ENV)
        broker = f"redis://:{st['redis_password']}@127.0.0.1:{ports['redis']}/0"
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url(st),
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": db_url(st, driver="db+postgresql+psycopg2"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(c.worker_concurrency),
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
            "AIRFLOW__CORE__PARALLELISM": str(max(c.parallelism, 8)),
            "AIRFLOW__API__SECRET_KEY": st["api_secret_key"],
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": topology.HOSTNAME_CALLABLE,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["logs"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["logs"]),
            "AIRFLOW__CHRONON__SENSOR_POKE_INTERVAL": str(c.sensor_poke_interval),
            "AIRFLOW__CHRONON__BATCH_JOB_POLL_INTERVAL": str(c.batch_job_poll_interval),
            # The scheduler, triggerer, dag-processor and API server are 127.0.0.1.
            topology.HOSTNAME_ENV: "127.0.0.1",
            # Spark drivers (spark-submit in a task, client mode) bind and advertise loopback.
            "SPARK_LOCAL_IP": "127.0.0.1",
            topology.conn_env_key(topology.SPARK_CONN_ID): json.dumps({
                "conn_type": "spark", "host": spark_master_url(st), "extra": {
                    "deploy-mode": "client",
                    # The "Spark application" link of the Spark tasks: the master UI's page of the app.
                    "application_url_template":
                        f"http://127.0.0.1:{ports['spark-master-ui']}/app/?appId={{app_id}}"}}),
        })
        if c.fast_recovery:
            env.update({
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            })
        env.update(c.extra_env)
        return env

    def worker_env(self, name: str) -> dict[str, str]:
        env = self.airflow_env()
        env[topology.HOSTNAME_ENV] = self.workers[name]["hostname"]
        return env

    def spark_env(self) -> dict[str, str]:
        env = self._base_env()
        env.update({"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(pyspark_home()),
                    "SPARK_WORKER_DIR": str(self.spark_dir / "work"),
                    # No REST submission server (it would listen on the fixed port 6066).
                    "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false"})
        return env

    # -- processes ---------------------------------------------------------------------------------

    def _spark_class(self) -> str:
        return str(pyspark_home() / "bin" / "spark-class")

    def spawn(self, name: str) -> dict[str, Any]:
        """Start (or restart, after :meth:`~.stack.Stack.retire`) the process called ``name``."""
        c, st, ports = self.config, self.state, self.state["ports"]
        bin_dir = Path(sys.executable).parent
        airflow = str(bin_dir / "airflow")
        if name == "postgres":
            data = self.pg_dir / "data"
            return self._spawn(name, [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(ports["postgres"]),
                                      "-c", "listen_addresses=127.0.0.1",
                                      "-c", f"unix_socket_directories={self.pg_dir}",
                                      "-c", "max_connections=200",
                                      # A throw-away demo/test database: durability off, speed on.
                                      "-c", "fsync=off", "-c", "synchronous_commit=off",
                                      "-c", "full_page_writes=off"],
                               self._base_env(), user=PG_USER, cwd=self.pg_dir, tier=TIER_SERVICES,
                               stop_signal=signal.SIGINT)  # fast shutdown: no waiting for clients
        if name == "redis":
            return self._spawn(name, [shutil.which("redis-server") or "redis-server",
                                      str(self.redis_dir / "redis.conf")],
                               self._base_env(), cwd=self.redis_dir, tier=TIER_SERVICES)
        if name == "spark-master":
            return self._spawn(name, [self._spark_class(), "org.apache.spark.deploy.master.Master",
                                      "--host", "127.0.0.1", "--port", str(ports["spark-master"]),
                                      "--webui-port", str(ports["spark-master-ui"])],
                               self.spark_env(), cwd=self.spark_dir, tier=TIER_SERVICES)
        if name.startswith("spark-worker-"):
            work = self.spark_work_dir(name)
            work.mkdir(parents=True, exist_ok=True)
            return self._spawn(name, [self._spark_class(), "org.apache.spark.deploy.worker.Worker",
                                      spark_master_url(st), "--host", "127.0.0.1",
                                      "--port", str(ports[name]), "--webui-port", str(ports[f"{name}-ui"]),
                                      "--cores", str(c.spark_worker_cores), "--memory", c.spark_worker_memory,
                                      "--work-dir", str(work)],
                               self.spark_env(), cwd=work, tier=TIER_SPARK)
        if name == "log-server":
            hosts = ["127.0.0.1"] + [w["hostname"] for w in self.workers.values()]
            argv = [sys.executable, "-m", "chronon_demo.logserver", "--port", str(ports["logs"])]
            for h in hosts:
                argv += ["--host", h]
            return self._spawn(name, argv, self.airflow_env(), tier=TIER_AIRFLOW)
        if name in self.workers:
            w = self.workers[name]
            return self._spawn(name, [airflow, "celery", "worker", "--queues", w["queue"],
                                      "--concurrency", str(c.worker_concurrency),
                                      "--celery-hostname", f"{w['queue']}@{w['hostname']}",
                                      "--skip-serve-logs", "--without-mingle", "--without-gossip"],
                               self.worker_env(name), tier=TIER_AIRFLOW)
        # The mail sink, the backend, the DB migration and the Airflow components: as natively.
        return super().spawn(name)

    def restart(self, name: str) -> dict[str, Any]:
        """Kill what is left of ``name`` (its whole tree), retire its record and start a new one.
        A Spark worker comes back on fresh ports (the old ones may linger in TIME_WAIT)."""
        self.kill(name, signal.SIGKILL)
        self.retire(name)
        if name.startswith("spark-worker-"):
            taken = set(self.state["ports"].values())
            self.state["ports"][name] = free_port(avoid=taken)
            self.state["ports"][f"{name}-ui"] = free_port(avoid=taken)
        record = self.spawn(name)
        self.log(f"  restarted {name} as pid {record['pid']}")
        return record

    def _pg_setup(self) -> None:
        """A fresh cluster owned by ``postgres``: superuser ``airflow`` with the generated
        password (scram on TCP), the ``airflow`` database created once the server is up."""
        base = self.workspace / "postgres"
        base.mkdir(parents=True, exist_ok=True)
        shutil.chown(base, PG_USER, PG_USER)
        base.chmod(0o700)
        # The postgres user must reach its directory; pytest's tmp dirs (0700 root) are not
        # traversable, so fall back to a private directory under /tmp.
        probe = subprocess.run(["runuser", "-u", PG_USER, "--", "test", "-w", str(base)], capture_output=True)
        if probe.returncode != 0:
            shutil.rmtree(base, ignore_errors=True)
            base = Path(tempfile.mkdtemp(prefix="chronon-pg-"))
            shutil.chown(base, PG_USER, PG_USER)
        self.state["pg_dir"] = str(base)
        self._save()
        pwfile = base / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.state["db_password"] + "\n")
        shutil.chown(pwfile, PG_USER, PG_USER)
        import pwd

        pg = pwd.getpwnam(PG_USER)
        try:
            out = subprocess.run([str(PG_BIN / "initdb"), "-D", str(base / "data"), "-U", DB_USER,
                                  f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                                  "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
                                 capture_output=True, text=True, cwd=str(base), user=pg.pw_uid, group=pg.pw_gid,
                                 extra_groups=[], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                       "LANG": "C.UTF-8"})
        finally:
            pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            raise StackError(f"initdb failed:\n{out.stdout}\n{out.stderr}")

    def _pg_create_db(self, timeout: float = 60.0) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            self._check_processes()
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.state["ports"]["postgres"], user=DB_USER,
                                        password=self.state["db_password"], dbname="postgres", connect_timeout=3)
                break
            except psycopg2.OperationalError as e:
                if time.monotonic() > deadline:
                    raise StackError(f"PostgreSQL not up after {timeout:.0f}s:\n"
                                     + tail(Path(self.record('postgres')['log']))) from e
                time.sleep(0.5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DB_NAME}")
        finally:
            conn.close()

    def _redis_setup(self) -> None:
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        conf = self.redis_dir / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join([
                "bind 127.0.0.1", f"port {self.state['ports']['redis']}", "protected-mode yes",
                "daemonize no", 'save ""', "appendonly no", f"dir {self.redis_dir}", 'logfile ""',
                f"requirepass {self.state['redis_password']}", ""]))

    def _write_airflow_files(self) -> None:
        home = self.airflow_home
        # An airflow.cfg of our own (0600): Airflow would otherwise write one with generated secrets.
        cfg = home / "airflow.cfg"
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# Every setting of this stack is in its processes' environment (AIRFLOW__*).\n")
        if self.config.retry_delay_cap is not None:
            (home / "config").mkdir(exist_ok=True)
            (home / "config" / "airflow_local_settings.py").write_text(
                '"""Test stack: a cluster policy capping task retry delays (the DAGs ask for minutes)."""\n'
                "import datetime\n\n"
                f"CAP = datetime.timedelta(seconds={int(self.config.retry_delay_cap)})\n\n\n"
                "def task_policy(task):\n"
                "    if task.retry_delay is not None and task.retry_delay > CAP:\n"
                "        task.retry_delay = CAP\n")

    def start(self) -> None:
        """Start every process (returns once the database is migrated; see :meth:`wait_ready`)."""
        running = self.running_state(self.workspace)
        if running:
            from chronon_demo.stack import AlreadyRunning

            raise AlreadyRunning(running)
        if not (PG_BIN / "postgres").exists():
            raise StackError(f"PostgreSQL 15 is not installed ({PG_BIN}): apt-get install postgresql-15")
        if shutil.which("redis-server") is None:
            raise StackError("redis-server is not installed: make system-deps (apt-get install redis-server)")
        self.state = self.new_state()
        c = self.config
        for d in (self.airflow_home, self.warehouse, self.backend_home, self.mail_dir, self.logs_dir,
                  self.spark_dir):
            d.mkdir(parents=True, exist_ok=True)
        pw_file = self.airflow_home / "passwords.json"
        fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({ADMIN_USER: self.state["password"]}) + "\n")
        self._save()
        t0 = time.monotonic()
        try:
            self._write_airflow_files()
            self._pg_setup()
            self._redis_setup()
            for name in ("postgres", "redis", "spark-master"):
                self.spawn(name)
            self._pg_create_db()
            self.log(f"  [{time.monotonic() - t0:5.0f}s] PostgreSQL is up: {db_url(self.state, password=False)}")
            migrate = self.spawn("db-migrate")
            for i in range(1, c.spark_workers + 1):
                self.spawn(f"spark-worker-{i}")
            if c.smtp_port is None:
                self.spawn("smtp")
            self.spawn("backend")
            self._wait_exit("db-migrate", migrate, timeout=300)
            self.log(f"  [{time.monotonic() - t0:5.0f}s] metadata DB migrated")
            for name in ("api-server", "scheduler", "dag-processor", "triggerer", *self.workers, "log-server"):
                self.spawn(name)
        except BaseException:
            self.stop()
            raise

    # -- readiness ---------------------------------------------------------------------------------

    def spark_master_status(self, http: httpx.Client | None = None) -> dict[str, Any]:
        """The master's JSON status (workers, their state, the running applications)."""
        url = f"http://127.0.0.1:{self.state['ports']['spark-master-ui']}/json/"
        if http is None:
            return httpx.get(url, timeout=5).json()
        return http.get(url).json()

    def celery_worker_ready(self, name: str) -> bool:
        """Celery prints ``<hostname> ready.`` once it consumes its queues (this record's log)."""
        record = self.record(name)
        w = self.workers[name]
        try:
            text = Path(record["log"]).read_text(errors="replace")
        except OSError:
            return False
        # The log is appended to by every process of that name (a restart keeps the old lines):
        # look only at what this process wrote.
        start = record.get("log_offset", 0)
        return f"{w['queue']}@{w['hostname']} ready." in text[start:]

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        log_path = self.logs_dir / f"{name}.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        record = super()._spawn(name, argv, env, **kwargs)
        record["log_offset"] = offset
        self._save()
        return record

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until every component answers: PostgreSQL and Redis (their ports), the Spark master with
        every worker ALIVE, the backend, Airflow's health endpoint (metadatabase, scheduler,
        dag-processor, triggerer), each Celery worker consuming its queue, the log server."""
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        up: set[str] = set()
        ports = self.state["ports"]
        wanted = {"postgres", "redis", "spark", "backend", "api-server", "metadatabase", "scheduler",
                  "dag_processor", "triggerer", "log-server", *self.workers}
        if self.config.smtp_port is None:
            wanted.add("smtp")
        with httpx.Client(timeout=5) as http:
            while True:
                self._check_processes()
                now: set[str] = set()
                for comp, port in (("postgres", ports["postgres"]), ("redis", ports["redis"]),
                                   ("log-server", ports["logs"]), ("smtp", ports["smtp"])):
                    if comp in wanted and _port_open(port):
                        now.add(comp)
                try:
                    status = self.spark_master_status(http)
                    alive = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
                    if len(alive) >= self.config.spark_workers:
                        now.add("spark")
                except (httpx.HTTPError, ValueError):
                    pass
                now |= self._http_components_up(http)
                for name in self.workers:
                    if self.celery_worker_ready(name):
                        now.add(name)
                for comp in sorted(now - up):
                    self.log(f"  [{time.monotonic() - t0:5.0f}s] {comp} is up")
                up |= now
                if wanted <= now:
                    return
                if time.monotonic() > deadline:
                    raise StackError(f"not ready after {timeout:.0f}s: waiting for {sorted(wanted - now)}; "
                                     f"see the logs in {self.logs_dir}")
                time.sleep(1.0)

    def wait_worker_ready(self, name: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.celery_worker_ready(name):
            self._check_processes()
            if time.monotonic() > deadline:
                raise StackError(f"{name} not consuming after {timeout:.0f}s:\n"
                                 + tail(Path(self.record(name)["log"])))
            time.sleep(1.0)

    def wait_spark_workers(self, count: int | None = None, timeout: float = 120.0) -> None:
        count = self.config.spark_workers if count is None else count
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.spark_master_status()
                if sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE") >= count:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"fewer than {count} Spark workers ALIVE after {timeout:.0f}s")
            time.sleep(1.0)

    # -- description --------------------------------------------------------------------------------

    def describe(self) -> list[str]:
        """What the demo prints about the topology (no secret)."""
        st = self.state
        lines = [f"  Executor        {topology.EXECUTOR} (broker redis://127.0.0.1:{st['ports']['redis']}/0, "
                 f"result backend {db_url(st, password=False, driver='db+postgresql+psycopg2')})",
                 f"  Metadata DB     {db_url(st, password=False)}",
                 f"  Spark master    {spark_master_url(st)} (UI http://127.0.0.1:{st['ports']['spark-master-ui']}, "
                 f"{self.config.spark_workers} workers x {self.config.spark_worker_cores} core "
                 f"{self.config.spark_worker_memory})"]
        for name, w in self.workers.items():
            lines.append(f"  Celery worker   {name}: queue {w['queue']}, hostname {w['hostname']}")
        return lines


def running_topology(workspace: Path) -> str:
    state = Stack.read_state(workspace) or {}
    return state.get("topology", "local")
