"""Start, find and stop the local stack: Airflow's api-server, scheduler, dag-processor and
triggerer as separate processes (SQLite + LocalExecutor, what ``airflow standalone`` runs), a
worker log server on loopback, the reference model backend and, unless a test brings its own, an
SMTP sink.

Everything listens on loopback, on free ports: the scheduler and triggerer run with
``--skip-serve-logs`` (their own log servers would bind every interface, on fixed ports 8793/8794)
and :mod:`chronon_demo.logserver` serves the task and trigger logs on ``127.0.0.1`` instead. Each
component is a process of its own, so a test can kill one (the triggerer, say) and start a new one
(:meth:`Stack.restart`). The workspace is private (0700) and every file holding a secret
(``stack.json``, ``airflow/passwords.json``, ``airflow/airflow.cfg``) is written 0600 from the start.

Every process is started in its own session (its own process group) with the marker
``CHRONON_DEMO_STACK_ID=<uuid>`` in its environment, which all its descendants inherit. The PIDs
(with their start times, so a recycled PID is never taken for ours) go to
``<workspace>/stack.json``. :meth:`Stack.stop` ends exactly those processes: each recorded PID
whose start time matches, its descendants, and any process that carries this stack's marker (a
descendant re-parented to init by a daemonising child). Nothing is ever looked up by name.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from chronon_airflow import settings
from chronon_reference_backend.process import free_port  # noqa: F401  (re-exported for the demo's callers)

MARKER = "CHRONON_DEMO_STACK_ID"
STATE_FILE = "stack.json"
DEFAULT_WORKSPACE = settings.PROJECT_ROOT / ".chronon" / "demo"
ADMIN_USER = "admin"

Printer = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


class StackError(RuntimeError):
    pass


class AlreadyRunning(StackError):
    def __init__(self, state: dict[str, Any]):
        self.state = state
        pids = ", ".join(str(p["pid"]) for p in state.get("processes", []))
        super().__init__(f"a stack is already running from {state.get('workspace')} "
                         f"(UI {state.get('ui_url')}, PIDs {pids})")


@dataclass
class StackConfig:
    workspace: Path = DEFAULT_WORKSPACE
    repo_path: Path = settings.PROJECT_ROOT / "configs"
    dags_folder: Path = settings.PROJECT_ROOT / "dags"
    plugins_folder: Path = settings.PROJECT_ROOT / "plugins"
    parallelism: int = 4
    sensor_poke_interval: int = 5
    batch_job_poll_interval: int = 5
    # None: start our own SMTP sink process (messages under <workspace>/mail); else a port on
    # 127.0.0.1 where the caller already runs an SMTP server.
    smtp_port: int | None = None
    enable_backend_admin: bool = False
    email_from: str = "chronon-airflow@localhost"
    # [chronon] retry_delay of the stack's tasks in seconds (None: the setting's default, 5 minutes).
    retry_delay: int | None = None
    # The Chronon Spark pool ([chronon] spark_pool) is created with this many slots.
    spark_pool_slots: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)


class Stack:
    # The stop tier (see _spawn) of the processes spawn() starts here; the distributed topology
    # stops them before its services.
    airflow_tier = 0

    def __init__(self, config: StackConfig, log: Printer = _print):
        self.config = config
        self.log = log
        self.workspace = Path(config.workspace).resolve()
        self.state: dict[str, Any] = {}

    # -- layout ------------------------------------------------------------------------------

    @property
    def airflow_home(self) -> Path:
        return self.workspace / "airflow"

    @property
    def warehouse(self) -> Path:
        return self.workspace / "warehouse"

    @property
    def backend_home(self) -> Path:
        return self.workspace / "backend"

    @property
    def mail_dir(self) -> Path:
        return self.workspace / "mail"

    @property
    def logs_dir(self) -> Path:
        return self.workspace / "logs"

    @property
    def state_path(self) -> Path:
        return self.workspace / STATE_FILE

    @property
    def ui_url(self) -> str:
        return self.state["ui_url"]

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.state['ports']['backend']}"

    @property
    def password(self) -> str:
        return self.state["password"]

    # -- state ---------------------------------------------------------------------------------

    def _save(self) -> None:
        """Write ``stack.json`` (mode 0600: it holds the login and the stack's secrets)."""
        self._private_workspace()
        write_private(self.state_path, json.dumps(self.state, indent=2))

    def _private_workspace(self) -> None:
        """The workspace, readable by its owner only (it holds the stack's secrets and data)."""
        self.workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.workspace, 0o700)

    @staticmethod
    def read_state(workspace: Path) -> dict[str, Any] | None:
        path = Path(workspace) / STATE_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(record: dict[str, Any]) -> psutil.Process | None:
        """The recorded process if it still runs and is the one we started (same start time)."""
        try:
            p = psutil.Process(record["pid"])
            if abs(p.create_time() - record["create_time"]) > 1.0 or p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    @classmethod
    def running_state(cls, workspace: Path) -> dict[str, Any] | None:
        """The state of the stack started from ``workspace`` if any of its processes still runs."""
        state = cls.read_state(workspace)
        if state and any(cls._alive(r) for r in state.get("processes", [])):
            return state
        return None

    # -- environment ---------------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        """This process's environment without any Airflow/Chronon setting (a test session sets
        its own AIRFLOW_HOME etc.), with the venv's bin first on PATH (airflow, spark-submit)."""
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "CHRONON_"))
                       or k in ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "PYTEST_CURRENT_TEST"))}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        env[MARKER] = self.state["id"]
        env["CHRONON_WAREHOUSE"] = str(self.warehouse)
        return env

    def airflow_env(self) -> dict[str, str]:
        from chronon_demo import topology

        c, ports = self.config, self.state["ports"]
        api = f"http://127.0.0.1:{ports['api']}"
        env = self._base_env()
        env.update({
            # The log server (chronon_demo.logserver) on loopback, one free port for task and trigger
            # logs; every component is 127.0.0.1, so the API server fetches logs there.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["logs"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["logs"]),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": topology.HOSTNAME_CALLABLE,
            topology.HOSTNAME_ENV: "127.0.0.1",
            # Signs the log server's requests: one secret for the API server and the log server.
            "AIRFLOW__API__SECRET_KEY": self.state["api_secret_key"],
            # Spark drivers (spark-submit in a task) bind and advertise loopback, not the host's address.
            "SPARK_LOCAL_IP": "127.0.0.1",
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(Path(c.dags_folder).resolve()),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(Path(c.plugins_folder).resolve()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(c.parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            "AIRFLOW__CORE__FERNET_KEY": self.state["fernet_key"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.airflow_home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(ports["api"]),
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            # One secret for every component: the scheduler signs task tokens the API server checks.
            "AIRFLOW__API_AUTH__JWT_SECRET": self.state["jwt_secret"],
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.airflow_home / "passwords.json"),
            # chronon-airflow ([chronon] settings, see chronon_airflow/settings.py)
            "AIRFLOW__CHRONON__REPO_PATH": str(Path(c.repo_path).resolve()),
            "AIRFLOW__CHRONON__WAREHOUSE": str(self.warehouse),
            "AIRFLOW__CHRONON__ENGINE": "local",
            "AIRFLOW__CHRONON__CATALOG": "local",
            "AIRFLOW__CHRONON__SPARK_CONN_ID": "chronon_spark",
            "AIRFLOW__CHRONON__SENSOR_POKE_INTERVAL": str(c.sensor_poke_interval),
            "AIRFLOW__CHRONON__BATCH_JOB_POLL_INTERVAL": str(c.batch_job_poll_interval),
            "AIRFLOW__CHRONON__SMTP_CONN_ID": "smtp_default",
            "AIRFLOW__CHRONON__EMAIL_FROM": c.email_from,
            "AIRFLOW__CHRONON__SPARK_POOL_SLOTS": str(c.spark_pool_slots),
            "AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE": json.dumps({
                "conn_type": "chronon_model_backend", "host": "127.0.0.1", "port": ports["backend"],
                "schema": "http"}),
            "AIRFLOW_CONN_CHRONON_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]",
                                                      "extra": {"deploy-mode": "client"}}),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps({
                "conn_type": "smtp", "host": "127.0.0.1", "port": ports["smtp"],
                "extra": {"from_email": c.email_from, "disable_tls": True, "disable_ssl": True,
                          "timeout": 10, "retry_limit": 2}}),
        })
        if c.retry_delay is not None:
            env["AIRFLOW__CHRONON__RETRY_DELAY"] = str(c.retry_delay)
        env.update(c.extra_env)
        return env

    # -- start -----------------------------------------------------------------------------------

    def reset_workspace(self) -> None:
        """Remove the previous run's data (refuses while that stack still runs)."""
        running = self.running_state(self.workspace)
        if running:
            raise AlreadyRunning(running)
        for sub in (self.airflow_home, self.warehouse, self.backend_home, self.mail_dir, self.logs_dir):
            shutil.rmtree(sub, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], *, user: str | None = None,
               cwd: Path | None = None, tier: int = 0, stop_signal: int = signal.SIGTERM) -> dict[str, Any]:
        """Start one process of the stack and record it. ``user``: run it as that system user
        (PostgreSQL refuses root); ``tier``: :meth:`stop_state` stops higher tiers first (the
        Airflow components before the database and the broker they use), each process with its
        ``stop_signal`` (PostgreSQL's fast shutdown is SIGINT)."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{name}.log"
        as_user: dict[str, Any] = {}
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, cwd=str(cwd or settings.PROJECT_ROOT), start_new_session=True,
                                    **as_user)
        p = psutil.Process(proc.pid)
        record = {"name": name, "pid": proc.pid, "pgid": os.getpgid(proc.pid), "create_time": p.create_time(),
                  "argv": argv, "log": str(log_path), "tier": tier, "stop_signal": int(stop_signal)}
        self.state["processes"].append(record)
        self._save()
        self.log(f"  started {name:<9} pid {proc.pid:<7} log {log_path}")
        return record

    def record(self, name: str) -> dict[str, Any]:
        """The current record of the process called ``name``."""
        for record in self.state.get("processes", []):
            if record["name"] == name:
                return record
        raise KeyError(f"no process {name!r} in this stack (have {[r['name'] for r in self.state['processes']]})")

    def kill(self, name: str, sig: int = signal.SIGKILL, tree: bool = True) -> list[int]:
        """Send ``sig`` to the recorded process ``name`` (and, with ``tree``, every descendant of
        it, collected before the signal so none escapes by re-parenting): a crash, for the
        failure tests. Returns the PIDs signalled; the record stays until :meth:`retire`."""
        p = self._alive(self.record(name))
        if p is None:
            return []
        procs = [p]
        if tree:
            try:
                procs += p.children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for q in procs:
            try:
                q.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        if sig == signal.SIGKILL:
            psutil.wait_procs(procs, timeout=10)
        return [q.pid for q in procs]

    def retire(self, name: str) -> dict[str, Any]:
        """Move the record of ``name`` (a process that ended, or was killed) to ``retired``, so a
        replacement can take its name. Its survivors, if any, still carry the stack's marker."""
        record = self.record(name)
        self.state["processes"].remove(record)
        self.state.setdefault("retired", []).append({**record, "retired_at": time.time()})
        self._save()
        return record

    def start(self) -> None:
        """Start every process (returns once the database is migrated; see :meth:`wait_ready`)."""
        running = self.running_state(self.workspace)
        if running:
            raise AlreadyRunning(running)
        self.state = self.new_state()
        self._private_workspace()
        for d in (self.airflow_home, self.warehouse, self.backend_home, self.mail_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._write_airflow_files()
        self._save()
        try:
            if self.config.smtp_port is None:
                self.spawn("smtp")
            self.spawn("backend")
            self._wait_exit("db-migrate", self.spawn("db-migrate"), timeout=300)
            for name in (*AIRFLOW_COMPONENTS, "log-server"):
                self.spawn(name)
        except BaseException:
            self.stop()
            raise

    def _write_airflow_files(self) -> None:
        """Airflow's files that hold secrets, written 0600 before any Airflow process starts: the
        simple auth manager's passwords (so the login is known, never printed) and an airflow.cfg of
        our own (Airflow would otherwise write one with generated secrets, world-readable)."""
        write_private(self.airflow_home / "passwords.json", json.dumps({ADMIN_USER: self.state["password"]}) + "\n")
        write_private(self.airflow_home / "airflow.cfg",
                      "# Every setting of this stack is in its processes' environment (AIRFLOW__*).\n")

    def spawn(self, name: str) -> dict[str, Any]:
        """Start (or, after :meth:`retire`, restart) the process called ``name``."""
        c, ports = self.config, self.state["ports"]
        bin_dir = Path(sys.executable).parent
        airflow = str(bin_dir / "airflow")
        tier = self.airflow_tier
        if name == "smtp":
            return self._spawn(name, [sys.executable, "-m", "chronon_demo.mail", "--host", "127.0.0.1",
                                      "--port", str(ports["smtp"]), "--dir", str(self.mail_dir)],
                               self._base_env(), tier=tier)
        if name == "backend":
            argv = [str(bin_dir / "chronon-airflow"), "backend", "serve", "--host", "127.0.0.1",
                    "--port", str(ports["backend"]), "--home", str(self.backend_home),
                    "--warehouse", str(self.warehouse), "--repo", str(Path(c.repo_path).resolve())]
            if c.enable_backend_admin:
                argv.append("--enable-admin")
            return self._spawn(name, argv, self._base_env(), tier=tier)
        if name == "db-migrate":
            return self._spawn(name, [airflow, "db", "migrate"], self.airflow_env(), tier=tier)
        if name == "log-server":
            return self._spawn(name, [sys.executable, "-m", "chronon_demo.logserver", "--port", str(ports["logs"]),
                                      "--host", "127.0.0.1"], self.airflow_env(), tier=tier)
        if name in AIRFLOW_COMPONENTS:
            argv = [airflow, name]
            if name in ("scheduler", "triggerer"):
                argv.append("--skip-serve-logs")  # its log server binds every interface: ours is loopback
            return self._spawn(name, argv, self.airflow_env(), tier=tier)
        raise KeyError(f"unknown process {name!r}")

    def restart(self, name: str) -> dict[str, Any]:
        """Kill what is left of ``name`` (its whole tree), retire its record and start a new one."""
        self.kill(name, signal.SIGKILL)
        self.retire(name)
        record = self.spawn(name)
        self.log(f"  restarted {name} as pid {record['pid']}")
        return record

    def _wait_exit(self, name: str, record: dict[str, Any], timeout: float) -> None:
        """Until the one-shot process ``name`` exits; its record is retired, a failure raised."""
        deadline = time.monotonic() + timeout
        p = psutil.Process(record["pid"])
        while True:
            try:
                rc = p.wait(timeout=1)
                break
            except psutil.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise StackError(f"{name} still running after {timeout:.0f}s; see {record['log']}") from None
                for other in self.state["processes"]:
                    if other is not record and not self._alive(other):
                        raise StackError(f"{other['name']} (pid {other['pid']}) exited:\n"
                                         + tail(Path(other["log"]))) from None
        self.retire(name)
        if rc != 0:
            raise StackError(f"{name} failed (exit {rc}):\n" + tail(Path(record["log"])))

    def new_state(self) -> dict[str, Any]:
        """Fresh ports and secrets for a start (nothing is started or written)."""
        c = self.config
        ports: set[int] = set()
        state: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "workspace": str(self.workspace),
            "started_at": time.time(),
            "ports": {"api": free_port(avoid=ports), "backend": free_port(avoid=ports),
                      "smtp": c.smtp_port or free_port(avoid=ports), "logs": free_port(avoid=ports)},
            "password": secrets.token_urlsafe(12),
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "processes": [],
        }
        state["ui_url"] = f"http://127.0.0.1:{state['ports']['api']}"
        state["user"] = ADMIN_USER
        return state

    # -- readiness -----------------------------------------------------------------------------------

    def _check_processes(self) -> None:
        for record in self.state["processes"]:
            if not self._alive(record):
                raise StackError(f"{record['name']} (pid {record['pid']}) exited; last log lines:\n"
                                 + tail(Path(record["log"])))

    def _http_components_up(self, http: httpx.Client) -> set[str]:
        """What answers healthy over HTTP: the model backend, the API server and the Airflow
        components its health endpoint reports healthy."""
        up: set[str] = set()
        try:
            if http.get(f"{self.backend_url}/healthz").status_code == 200:
                up.add("backend")
        except httpx.HTTPError:
            pass
        try:
            r = http.get(f"{self.ui_url}/api/v2/monitor/health")
            if r.status_code == 200:
                up.add("api-server")
                up |= {comp for comp, info in r.json().items()
                       if isinstance(info, dict) and info.get("status") == "healthy"}
        except (httpx.HTTPError, ValueError):
            pass
        return up

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Until the backend answers /healthz and Airflow's scheduler, dag-processor and triggerer
        report healthy; prints each component as it comes up."""
        deadline = time.monotonic() + timeout
        up: set[str] = set()
        wanted = {"backend", "api-server", "metadatabase", "scheduler", "dag_processor", "triggerer", "log-server"}
        if self.config.smtp_port is None:
            wanted.add("smtp")
        t0 = time.monotonic()
        with httpx.Client(timeout=5) as http:
            while True:
                self._check_processes()
                now_up: set[str] = set()
                if "smtp" in wanted and _port_open(self.state["ports"]["smtp"]):
                    now_up.add("smtp")
                if _port_open(self.state["ports"]["logs"]):
                    now_up.add("log-server")
                now_up |= self._http_components_up(http)
                for comp in sorted(now_up - up):
                    self.log(f"  [{time.monotonic() - t0:5.0f}s] {comp} is up")
                up |= now_up
                if wanted <= now_up:
                    return
                if time.monotonic() > deadline:
                    raise StackError(f"not ready after {timeout:.0f}s: waiting for {sorted(wanted - now_up)}; "
                                     f"see the logs in {self.logs_dir}")
                time.sleep(1.0)

    # -- stop ------------------------------------------------------------------------------------

    @staticmethod
    def _members(state: dict[str, Any]) -> list[psutil.Process]:
        """Every live process of the stack: recorded PIDs (start time checked), their
        descendants, and processes carrying the stack's marker in their environment."""
        found: dict[int, psutil.Process] = {}
        for record in state.get("processes", []):
            p = Stack._alive(record)
            if p is None:
                continue
            found[p.pid] = p
            try:
                for child in p.children(recursive=True):
                    found[child.pid] = child
            except psutil.NoSuchProcess:
                pass
        stack_id = state.get("id")
        if stack_id:
            me = os.getpid()
            for p in psutil.process_iter():
                if p.pid in found or p.pid == me:
                    continue
                try:
                    if p.environ().get(MARKER) == stack_id:
                        found[p.pid] = p
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
                    continue
        return list(found.values())

    @classmethod
    def _stop_waves(cls, state: dict[str, Any]) -> dict[int, dict[int, tuple[psutil.Process, int]]]:
        """The stack's live processes by the recorded ``tier``: pid -> (process, signal to stop it
        with: the record's ``stop_signal`` for a recorded process, SIGTERM for its descendants).
        Processes found only by the marker go with the highest tier."""
        members = cls._members(state)
        if not members:
            return {}
        tiers: dict[int, dict[int, tuple[psutil.Process, int]]] = {}
        placed: set[int] = set()
        for record in state.get("processes", []):
            p = cls._alive(record)
            if p is None:
                continue
            wave = tiers.setdefault(int(record.get("tier", 0)), {})
            if p.pid not in placed:
                wave[p.pid] = (p, int(record.get("stop_signal", signal.SIGTERM)))
                placed.add(p.pid)
            try:
                for q in p.children(recursive=True):
                    if q.pid not in placed:
                        wave[q.pid] = (q, signal.SIGTERM)
                        placed.add(q.pid)
            except psutil.NoSuchProcess:
                pass
        strays = {p.pid: (p, signal.SIGTERM) for p in members if p.pid not in placed}
        if strays:
            tiers.setdefault(max(tiers, default=0), {}).update(strays)
        return tiers

    @classmethod
    def stop_state(cls, state: dict[str, Any], log: Printer = _print, grace: float = 20.0) -> int:
        """SIGTERM every process of the stack, SIGKILL what is left after ``grace`` seconds, one
        tier after the other, highest first (see :meth:`_spawn`); each tier's processes are
        looked up when its turn comes, so a child forked meanwhile is part of it. Returns how many
        processes were signalled."""
        signalled: set[int] = set()
        done: set[int] = set()
        while True:
            waves = cls._stop_waves(state)
            pending = sorted((t for t in waves if t not in done), reverse=True)
            if not pending:
                break
            tier = pending[0]
            done.add(tier)
            procs = []
            for p, sig in waves[tier].values():
                try:
                    p.send_signal(sig)
                    procs.append(p)
                except psutil.NoSuchProcess:
                    pass
            signalled |= {p.pid for p in procs}
            _, alive = psutil.wait_procs(procs, timeout=grace)
            names = []
            for p in alive:
                try:
                    names.append(f"{' '.join(p.cmdline()[:3])[:60]} ({p.pid})")
                except psutil.Error:
                    names.append(str(p.pid))
            if names:
                log(f"  still running {grace:.0f}s after SIGTERM, killed: {', '.join(names)}")
            for p in alive:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=5)
        # Children forked while we waited (a task starting during shutdown) are caught here.
        late = [p for p in cls._members(state) if p.pid not in signalled]
        for p in late:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(late, timeout=5)
        return len(signalled) + len(late)

    def stop(self) -> int:
        state = self.state or self.read_state(self.workspace) or {}
        n = self.stop_state(state, self.log)
        if state:
            state["stopped_at"] = time.time()
            self.state = state
            self._save()
        return n


# Airflow's long-running components, one process each (what `airflow standalone` runs), plus the
# loopback log server that replaces the scheduler's and triggerer's own.
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600 from the first byte (a secret never sits in
    a file anyone else may read, not even for a moment)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.rename(path)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
