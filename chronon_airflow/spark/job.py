"""One description of a Chronon Spark job, for both engines, and the exact spark-submit argv for it.

Pure: no Airflow import, so the plan layer can show each task's argv without Airflow loaded.

Engines (``[chronon] engine``):

* ``jar``   — the Chronon driver jar, ``--class ai.chronon.spark.Driver <jar> <subcommand> ...``,
  with resources mapped from the teams.json env the way upstream ``scripts/spark_submit.sh`` does.
* ``local`` — this package's PySpark engine (``chronon_local_engine/driver.py``) with the same
  subcommands and arguments, tiny local-mode settings, no resource flags.

Run-time dates are not known when the job is built (the plan is static), so the application
arguments carry the placeholders :data:`START_DS` / :data:`END_DS` as whole argv elements;
:meth:`SparkJob.with_dates` swaps them for validated ``YYYY-MM-DD`` strings at execute time.
Nothing here is ever joined into a shell string or rendered by Jinja.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chronon_airflow import naming
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.partitions import check_ds
from chronon_airflow.spark.env import PRODUCTION, effective_mode, resolve_env

START_DS = "<start_ds>"
END_DS = "<end_ds>"
CHRONON_DRIVER_CLASS = "ai.chronon.spark.Driver"
# The local engine is a sibling package (extra ``engine``); the product only needs the path of its
# driver script, found without importing it.
LOCAL_ENGINE_PACKAGE = "chronon_local_engine"


@functools.lru_cache(maxsize=1)
def local_driver_path() -> str:
    """Path of the local engine's ``driver.py``, or a clear error when the extra is not installed.
    Looked up once per process (an error is not cached): the planner asks for every Spark step,
    and ``find_spec`` walking ``sys.path`` each time was 40 % of planning 2,000 joins."""
    import importlib.util

    spec = importlib.util.find_spec(LOCAL_ENGINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InvalidConfig("[chronon] engine", "[chronon] engine = local needs the local engine: "
                                                "pip install 'chronon-airflow[engine]' (or set [chronon] engine = jar)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "driver.py")
ENGINES = ("jar", "local")

# (conf_type, mode) -> Chronon Driver subcommand, as upstream run.py ROUTES.
ROUTES = {
    ("joins", "backfill"): "join",
    ("group_bys", "upload"): "group-by-upload",
    ("group_bys", "backfill"): "group-by-backfill",
    ("group_bys", "streaming"): "group-by-streaming",
    ("staging_queries", "backfill"): "staging-query-backfill",
    ("joins", "label-join"): "label-join",
    ("joins", "stats-summary"): "stats-summary",
    ("joins", "consistency-metrics-compute"): "consistency-metrics-compute",
    ("joins", "log-flattener"): "log-flattener",
    ("joins", "metadata-upload"): "metadata-upload",
}
# Which subcommands take which date arguments.
_TAKES_END = {"join", "group-by-upload", "group-by-backfill", "staging-query-backfill", "label-join",
              "stats-summary", "consistency-metrics-compute", "log-flattener"}
_TAKES_START = {"join", "group-by-backfill", "staging-query-backfill"}
# Subcommands that talk to the online store: upstream passes --online-jar/--online-class and the
# online args (run.py ONLINE_WRITE_ARGS).
_ONLINE = {"group-by-streaming", "metadata-upload"}
# Modes whose runs get customJson "additional_args" (upstream run.py).
_ADDITIONAL_ARGS_MODES = {"backfill", "upload"}
# What the local engine (chronon_local_engine) can run; any other step skips with that reason.
LOCAL_ENGINE_SUBCOMMANDS = frozenset({"join", "group-by-upload", "group-by-backfill", "staging-query-backfill"})
# A Java class name, for CHRONON_ONLINE_CLASS (upstream's teams.json ships a "[ONLINE-TODO]..." placeholder).
_JAVA_CLASS = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$")

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MEMORY = re.compile(r"^\d+[kKmMgGtT]?[bB]?$")
_INT = re.compile(r"^\d+$")
_ALLOWED_BINARIES = ("spark-submit", "spark2-submit", "spark3-submit")
# teams.json keys the jar engine maps onto spark-submit options (upstream scripts/spark_submit.sh).
_CONSUMED_KEYS = ("EXECUTOR_CORES", "EXECUTOR_MEMORY", "DRIVER_MEMORY", "NUM_EXECUTORS", "MAX_EXECUTORS",
                  "PARALLELISM", "PARTITION_COLUMN", "PARTITION_FORMAT")

# Local-engine Spark settings: one small JVM, no UI, UTC so ds <-> epoch millis is unambiguous,
# and partition values kept as strings ("2024-01-01" would otherwise be inferred as a date).
LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


def validate_name(value: Any, field_name: str, pattern: re.Pattern = _NAME) -> str:
    if not isinstance(value, str) or not pattern.match(value) or value.startswith("-"):
        raise InvalidConfig(field_name,
            f"{field_name} = {value!r} is not allowed: it must match {pattern.pattern} and not start with '-'"
        )
    return value


def validate_conf_path(value: Any, field_name: str = "conf_path") -> str:
    """A path to a compiled config: one unambiguous argv element for the driver's argument parser.

    No leading ``-`` and no control characters. The file name itself (below the repo root) is held
    to ``[A-Za-z0-9_.-]`` by the loader; the repo root is a deployment setting and may hold any
    printable character (the argv never goes through a shell).
    """
    if not isinstance(value, str) or not value or value.startswith("-") or _CONTROL.search(value):
        raise InvalidConfig(field_name, f"{field_name} = {value!r} is not a usable path")
    if any(p.startswith("-") for p in value.split("/")):
        raise InvalidConfig(field_name, f"{field_name} = {value!r} is not allowed: a path component starts with '-'")
    return value


def _argv_value(value: str, field_name: str) -> str:
    """A value that follows an option in the driver's argv: never read as an option itself."""
    if not value or value.startswith("-") or _CONTROL.search(value):
        raise InvalidConfig(field_name, f"{field_name} = {value!r} is not allowed as a command-line value")
    return value


def _int_env(env: Mapping[str, str], key: str) -> int | None:
    if key not in env or env[key] == "":
        return None
    if not _INT.match(env[key]):
        raise InvalidConfig(f"env {key}", f"env {key} = {env[key]!r} must be a whole number")
    return int(env[key])


def _memory_env(env: Mapping[str, str], key: str) -> str | None:
    if key not in env or env[key] == "":
        return None
    if not _MEMORY.match(env[key]):
        raise InvalidConfig(f"env {key}", f"env {key} = {env[key]!r} must look like 512M, 8G, 1024")
    return env[key]


@dataclass(frozen=True)
class SparkJob:
    """Everything spark-submit needs; field names follow ``SparkSubmitOperator``'s arguments."""

    application: str
    java_class: str | None
    application_args: list[str]
    conf: dict[str, str]
    executor_cores: int | None
    executor_memory: str | None
    driver_memory: str | None
    num_executors: int | None
    name: str
    env_vars: dict[str, str]
    jars: str | None = None
    # Extra context, not spark-submit arguments.
    engine: str = "local"
    subcommand: str = ""
    conf_type: str = ""
    mode: str = ""
    # Where spark-submit lives: for the jar engine teams.json's SPARK_SUBMIT_PATH (its folder is
    # put first on PATH at execute time); None for the local engine, which uses the venv's own.
    spark_submit_path: str | None = None

    @property
    def takes_dates(self) -> bool:
        """Whether the argv has a date placeholder (a metadata upload or a streaming job has none)."""
        return START_DS in self.application_args or END_DS in self.application_args

    def with_dates(self, start_ds: str | None, end_ds: str | None) -> SparkJob:
        """The job with the date placeholders replaced (whole argv elements only). A given date is
        checked even when this subcommand takes no such argument: a bad one is a bad run."""
        if start_ds is not None:
            check_ds(start_ds, "start_ds")
        if end_ds is not None:
            check_ds(end_ds, "end_ds")
        args = []
        for arg in self.application_args:
            if arg == START_DS:
                if start_ds is None:
                    raise InvalidConfig("start_ds", f"{self.subcommand} needs a start date but none was given")
                arg = check_ds(start_ds, "start_ds")
            elif arg == END_DS:
                if end_ds is None:
                    raise InvalidConfig("end_ds", f"{self.subcommand} needs an end date but none was given")
                arg = check_ds(end_ds, "end_ds")
            args.append(arg)
        return dataclasses.replace(self, application_args=args)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def infer_conf_type(conf: Mapping[str, Any]) -> str:
    if "joinParts" in conf or "left" in conf:
        return "joins"
    if "keyColumns" in conf or "aggregations" in conf or "sources" in conf:
        return "group_bys"
    if "query" in conf and isinstance(conf.get("query"), str):
        return "staging_queries"
    raise InvalidConfig("", "cannot tell whether the config is a join, a group_by or a staging query")


def app_name(conf_type: str, mode: str, env: str, name: str) -> str:
    """Upstream ``chronon_{conf_type}_{mode}_{context}_{name}``, cleaned to ``[A-Za-z0-9_]``."""
    return naming.sanitize(f"chronon_{conf_type}_{effective_mode(mode)}_{env}_{name}")


def build_spark_job(
    conf: Mapping[str, Any],
    conf_path: str,
    mode: str,
    teams: Mapping[str, Any],
    *,
    conf_type: str | None = None,
    engine: str = "local",
    env: str = PRODUCTION,
    chronon_jar: str = "",
    chronon_version: str = "",
) -> SparkJob:
    """Build the Spark job for ``conf`` (parsed compiled JSON) in ``mode``.

    ``mode``: ``backfill`` (join -> ``join``; group_by -> ``group-by-backfill``; staging query ->
    ``staging-query-backfill``), ``upload`` (group_by -> ``group-by-upload``) or ``streaming``
    (group_by -> ``group-by-streaming``). ``engine``/``env``/``chronon_jar``/``chronon_version``
    come from the deployment (:class:`chronon_airflow.deployment.Deployment`); nothing is read from
    settings here.
    """
    if engine not in ENGINES:
        raise InvalidConfig("[chronon] engine", f"engine {engine!r} is not one of {ENGINES}")
    env = env or PRODUCTION
    validate_name(env, "env")
    conf_type = conf_type or infer_conf_type(conf)
    mode = effective_mode(mode)
    subcommand = ROUTES.get((conf_type, mode))
    if subcommand is None:
        raise InvalidConfig(
            "", f"mode {mode!r} is not available for {conf_type} "
            f"(supported: {sorted(m for (t, m) in ROUTES if t == conf_type)})"
        )
    meta = conf.get("metaData") or {}
    name = validate_name(meta.get("name"), "metaData.name")
    team = validate_name(meta.get("team") or name.split(".")[0], "metaData.team")
    if meta.get("outputNamespace") is not None:
        validate_name(meta["outputNamespace"], "metaData.outputNamespace", _NAMESPACE)
    validate_conf_path(conf_path)

    resolved = resolve_env(conf, teams, team, mode, env)
    job_name = app_name(conf_type, mode, env, name)

    args = [subcommand, "--conf-path", conf_path]
    if subcommand in _TAKES_END:
        args += ["--end-date", END_DS]
    if subcommand in _TAKES_START:
        args += ["--start-partition-override", START_DS]

    if subcommand == "log-flattener":
        # Upstream's helper passes the log and schema tables of teams.json's common_env.
        for key, option in (("CHRONON_LOG_TABLE", "--log-table"), ("CHRONON_SCHEMA_TABLE", "--schema-table")):
            if not resolved.get(key):
                raise InvalidConfig(f"env {key}", f"log flattening needs teams.json common_env {key}")
            args += [option, _argv_value(resolved[key], f"env {key}")]

    # Upstream run.py appends customJson "additional_args" to backfill and upload runs: the list's
    # items joined by spaces and split again by its shell (a dict contributes its keys, as there).
    additional: list[str] = []
    if mode in _ADDITIONAL_ARGS_MODES and meta.get("customJson"):
        try:
            custom = json.loads(meta["customJson"])
        except ValueError as exc:
            raise InvalidConfig("metaData.customJson", f"metaData.customJson of {name} is not JSON: {exc}") from None
        extra = (custom or {}).get("additional_args") if isinstance(custom, dict) else None
        if extra:
            if isinstance(extra, str):
                extra = [extra]
            try:
                additional = shlex.split(" ".join(str(a) for a in extra))
            except ValueError as e:
                raise InvalidConfig("metaData.customJson.additional_args", f"cannot be split into arguments: {e}") \
                    from None

    env_vars = dict(resolved)
    env_vars["APP_NAME"] = job_name
    env_vars["CHRONON_CONF_PATH"] = conf_path

    if engine == "local":
        # The local driver parses the options it knows (e.g. --step-days) and refuses others
        # when it runs, naming them.
        args += additional
        job_conf: dict[str, str] = dict(LOCAL_CONF)
        job_conf["spark.chronon.partition.column"] = resolved.get("PARTITION_COLUMN", "ds")
        job_conf["spark.chronon.partition.format"] = resolved.get("PARTITION_FORMAT", "yyyy-MM-dd")
        return SparkJob(
            application=local_driver_path(), java_class=None, application_args=args, conf=job_conf,
            executor_cores=None, executor_memory=None, driver_memory=None, num_executors=None,
            name=job_name, env_vars=env_vars, jars=None, engine="local", subcommand=subcommand,
            conf_type=conf_type, mode=mode, spark_submit_path=None,
        )

    # ---- the Chronon jar ----
    version = chronon_version or resolved.get("VERSION", "")
    jar = chronon_jar
    if not jar:
        raise InvalidConfig(
            "[chronon] chronon_jar",
            "engine 'jar' needs the Chronon driver jar: set [chronon] chronon_jar "
            "(AIRFLOW__CHRONON__CHRONON_JAR), optionally with a {version} placeholder"
        )
    jar = jar.replace("{version}", version)
    if version:
        env_vars["VERSION"] = version
    env_vars["CHRONON_DRIVER_JAR"] = jar

    if subcommand in _ONLINE:
        # Upstream ONLINE_WRITE_ARGS: --conf-path --online-jar --online-class + CHRONON_ONLINE_ARGS.
        # Only these jobs read them: a bad value costs their DAG, never the batch ones.
        if resolved.get("CHRONON_ONLINE_JAR"):
            args += ["--online-jar", _argv_value(resolved["CHRONON_ONLINE_JAR"], "env CHRONON_ONLINE_JAR")]
        if resolved.get("CHRONON_ONLINE_CLASS"):
            args += ["--online-class", _argv_value(resolved["CHRONON_ONLINE_CLASS"], "env CHRONON_ONLINE_CLASS")]
        # Split like a shell would, but nothing is ever run through one.
        try:
            args += shlex.split(resolved.get("CHRONON_ONLINE_ARGS", ""))
        except ValueError as e:
            raise InvalidConfig("env CHRONON_ONLINE_ARGS",
                                f"env CHRONON_ONLINE_ARGS cannot be split into arguments: {e}") from None
    args += additional

    # Mapping of upstream scripts/spark_submit.sh.
    job_conf = {}
    parallelism = _int_env(resolved, "PARALLELISM")
    if parallelism is not None:
        job_conf["spark.sql.shuffle.partitions"] = str(parallelism)
        job_conf["spark.default.parallelism"] = str(parallelism)
    max_executors = _int_env(resolved, "MAX_EXECUTORS")
    if max_executors is not None:
        job_conf["spark.dynamicAllocation.enabled"] = "true"
        # Spark 3+: lets dynamic allocation work without an external shuffle service.
        job_conf["spark.dynamicAllocation.shuffleTracking.enabled"] = "true"
        job_conf["spark.dynamicAllocation.maxExecutors"] = str(max_executors)
    if resolved.get("PARTITION_COLUMN"):
        job_conf["spark.chronon.partition.column"] = validate_name(resolved["PARTITION_COLUMN"], "env PARTITION_COLUMN")
    if resolved.get("PARTITION_FORMAT"):
        job_conf["spark.chronon.partition.format"] = resolved["PARTITION_FORMAT"]

    # Keys turned into flags/conf above are not repeated as environment variables: on YARN and
    # Kubernetes every env var becomes one more --conf, which only hides the flags that matter.
    for key in _CONSUMED_KEYS:
        env_vars.pop(key, None)

    spark_submit_path = resolved.get("SPARK_SUBMIT_PATH") or None
    if spark_submit_path and Path(spark_submit_path).name not in _ALLOWED_BINARIES:
        raise InvalidConfig(
            "env SPARK_SUBMIT_PATH",
            f"env SPARK_SUBMIT_PATH = {spark_submit_path!r}: the Spark provider only runs one of "
            f"{_ALLOWED_BINARIES} found on PATH"
        )
    return SparkJob(
        application=jar, java_class=CHRONON_DRIVER_CLASS, application_args=args, conf=job_conf,
        executor_cores=_int_env(resolved, "EXECUTOR_CORES"),
        executor_memory=_memory_env(resolved, "EXECUTOR_MEMORY"),
        driver_memory=_memory_env(resolved, "DRIVER_MEMORY"),
        num_executors=_int_env(resolved, "NUM_EXECUTORS"),
        name=job_name, env_vars=env_vars, jars=resolved.get("CHRONON_ONLINE_JAR") or None,
        engine="jar", subcommand=subcommand, conf_type=conf_type, mode=mode,
        spark_submit_path=spark_submit_path,
    )


_PLACEHOLDER = re.compile(r"\[[A-Z-]*TODO\]")


def local_skip_reason(job: SparkJob) -> str | None:
    """Why the local engine does not run ``job`` (``None`` when it does, or for the jar)."""
    if job.engine != "local" or job.subcommand in LOCAL_ENGINE_SUBCOMMANDS:
        return None
    return (f"the local engine has no {job.subcommand}: it runs only with the Chronon jar "
            "([chronon] engine = jar)")


def job_warnings(job: SparkJob) -> list[tuple[str, str]]:
    """``(field, message)`` for values this job uses that cannot work as they are: upstream's
    teams.json ships placeholders (``[TODO]``, ``[ONLINE-TODO]``) that a team fills in later. The
    job is still planned (the value is harmless on a command line); its task fails until fixed."""
    out: list[tuple[str, str]] = []
    if job.engine != "jar":
        return out
    if job.spark_submit_path and _PLACEHOLDER.search(job.spark_submit_path):
        out.append(("env SPARK_SUBMIT_PATH", f"{job.spark_submit_path!r} is a placeholder: spark-submit is "
                                             "taken from PATH instead"))
    if job.subcommand in _ONLINE:
        args = job.application_args
        if "--online-class" in args:
            value = args[args.index("--online-class") + 1]
            if not _JAVA_CLASS.fullmatch(value):
                out.append(("env CHRONON_ONLINE_CLASS", f"{value!r} is not a Java class name: {job.subcommand} "
                                                        "fails until teams.json names the online.Api class"))
        else:
            out.append(("env CHRONON_ONLINE_CLASS", f"is not set: {job.subcommand} needs the online.Api class"))
        if any(_PLACEHOLDER.search(a) for a in args):
            out.append(("env CHRONON_ONLINE_ARGS", "still holds upstream's [ONLINE-TODO] placeholder text"))
    return out


@dataclass(frozen=True)
class SparkConnection:
    """The parts of an Airflow Spark connection that shape the spark-submit command."""

    master: str = "yarn"
    deploy_mode: str | None = None
    queue: str | None = None
    spark_binary: str = "spark-submit"
    namespace: str | None = None

    @classmethod
    def from_airflow(
        cls, conn_type: str, host: str | None, port: int | None = None, extra: Mapping[str, Any] | None = None
    ) -> SparkConnection:
        """Same derivation as ``SparkSubmitHook._resolve_connection`` (provider 6.3)."""
        extra = dict(extra or {})
        if conn_type == "spark" and host and ("://" in host or not port):
            master = host
        else:
            master = f"{conn_type}://{host or ''}"
        if port:
            master = f"{master}:{port}"
        binary = extra.get("spark-binary", "spark-submit")
        if binary not in _ALLOWED_BINARIES:
            raise InvalidConfig("spark-binary", f"spark-binary {binary!r} is not one of {_ALLOWED_BINARIES}")
        return cls(master=master, deploy_mode=extra.get("deploy-mode"), queue=extra.get("queue"),
                   spark_binary=binary, namespace=extra.get("namespace"))


LOCAL_CONNECTION = SparkConnection(master="local[2]")


def spark_submit_argv(
    job: SparkJob,
    connection: SparkConnection = LOCAL_CONNECTION,
    start_ds: str | None = None,
    end_ds: str | None = None,
) -> list[str]:
    """The argv ``SparkSubmitHook._build_spark_submit_command`` builds for ``job`` (provider 6.3).

    Dates stay as :data:`START_DS`/:data:`END_DS` unless given. Kept in step with the hook by a
    test that compares against the real hook.
    """
    if start_ds is not None or end_ds is not None:
        job = job.with_dates(start_ds, end_ds)
    is_yarn = "yarn" in connection.master
    is_k8s = "k8s" in connection.master
    argv = [connection.spark_binary, "--master", connection.master]
    for key, value in job.conf.items():
        argv += ["--conf", f"{key}={value}"]
    if job.env_vars and (is_k8s or is_yarn):
        tmpl = "spark.yarn.appMasterEnv.{}={}" if is_yarn else "spark.kubernetes.driverEnv.{}={}"
        for key, value in job.env_vars.items():
            argv += ["--conf", tmpl.format(key, value)]
    elif job.env_vars and connection.deploy_mode == "cluster":
        raise InvalidConfig("deploy-mode", "env vars cannot be passed in Spark standalone cluster mode")
    if is_k8s and connection.namespace:
        argv += ["--conf", f"spark.kubernetes.namespace={connection.namespace}"]
    if job.jars:
        argv += ["--jars", job.jars]
    if job.num_executors:
        argv += ["--num-executors", str(job.num_executors)]
    if job.executor_cores:
        argv += ["--executor-cores", str(job.executor_cores)]
    if job.executor_memory:
        argv += ["--executor-memory", job.executor_memory]
    if job.driver_memory:
        argv += ["--driver-memory", job.driver_memory]
    if job.name:
        argv += ["--name", job.name]
    if job.java_class:
        argv += ["--class", job.java_class]
    if connection.queue:
        argv += ["--queue", connection.queue]
    if connection.deploy_mode:
        argv += ["--deploy-mode", connection.deploy_mode]
    argv.append(job.application)
    argv += list(job.application_args)
    return argv
