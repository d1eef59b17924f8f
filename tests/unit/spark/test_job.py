"""SparkJob construction: env precedence, argv for both engines, hostile names, parity with the hook."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from chronon_airflow.exceptions import InvalidConfig, InvalidRange
from chronon_airflow.spark import (
    END_DS,
    START_DS,
    SparkConnection,
    build_spark_job,
    env_sources,
    local_driver_path,
    resolve_env,
    spark_submit_argv,
)


@pytest.fixture(scope="module")
def teams(reference_repo: Path) -> dict:
    return json.loads((reference_repo / "teams.json").read_text())


def _load(repo: Path, rel: str) -> dict:
    return json.loads((repo / "production" / rel).read_text())


@pytest.fixture(scope="module")
def qr(reference_repo: Path) -> dict:
    return _load(reference_repo, "joins/search/query_relevance.v1")


@pytest.fixture(scope="module")
def txn(reference_repo: Path) -> dict:
    return _load(reference_repo, "joins/risk/txn_fraud.v1")


@pytest.fixture(scope="module")
def user_stats(reference_repo: Path) -> dict:
    return _load(reference_repo, "group_bys/risk/user_txn_stats.v1")


QR_PATH = "/repo/production/joins/search/query_relevance.v1"


# ---------------------------------------------------------------- env precedence


def test_reference_teams_search_backfill(teams, qr):
    env = resolve_env(qr, teams, "search", "backfill")
    # search.production.backfill overrides default.production.backfill for EXECUTOR_MEMORY only.
    assert env["EXECUTOR_MEMORY"] == "12G"
    assert env["DRIVER_MEMORY"] == "8G"
    assert env["EXECUTOR_CORES"] == "2"
    assert env["PARALLELISM"] == "2000"
    # default.common_env still reaches every job.
    assert env["VERSION"] == "0.0.115"
    assert env["PARTITION_COLUMN"] == "ds"
    src = env_sources(qr, teams, "search", "backfill")
    assert src["EXECUTOR_MEMORY"] == "search.production.backfill"
    assert src["DRIVER_MEMORY"] == "default.production.backfill"
    assert src["VERSION"] == "default.common_env"


def test_reference_teams_risk_modes(teams, txn, user_stats):
    assert resolve_env(txn, teams, "risk", "backfill")["EXECUTOR_CORES"] == "4"
    upload = resolve_env(user_stats, teams, "risk", "upload")
    assert upload["EXECUTOR_CORES"] == "1" and upload["PARALLELISM"] == "1000"
    assert "DRIVER_MEMORY" not in upload  # default.production.upload has none
    streaming = resolve_env(user_stats, teams, "risk", "streaming")
    assert streaming["PARALLELISM"] == "32" and streaming["EXECUTOR_MEMORY"] == "4G"
    # Every streaming flavour maps to the "streaming" section, as in run.py.
    assert resolve_env(user_stats, teams, "risk", "local-streaming")["PARALLELISM"] == "32"


SMALL_TEAMS = {
    "default": {
        "common_env": {"A": "common", "B": "common", "C": "common", "D": "common", "E": "common", "F": "common"},
        "production": {"backfill": {"B": "default.prod", "C": "default.prod", "D": "default.prod",
                                    "E": "default.prod"}},
        "staging": {"backfill": {"B": "default.staging-ignored"}},
    },
    "t": {
        "common_env": {"F": "team.common", "B": "team.common", "C": "team.common"},
        "production": {"backfill": {"C": "team.prod", "D": "team.prod", "E": "team.prod"}},
        "staging": {"backfill": {"D": "team.staging", "E": "team.staging"}},
    },
}
SMALL_CONF = {"metaData": {"name": "t.x.v1", "team": "t", "modeToEnvMap": {"backfill": {"E": "conf"}}}}


@pytest.mark.parametrize(
    "env_name,expected",
    [
        ("production", {"A": "common", "F": "team.common", "B": "default.prod", "C": "team.prod",
                        "D": "team.prod", "E": "conf"}),
        ("staging", {"A": "common", "F": "team.common", "B": "default.prod", "C": "team.prod",
                     "D": "team.staging", "E": "conf"}),
    ],
)
def test_each_level_wins_where_it_should(env_name, expected):
    assert resolve_env(SMALL_CONF, SMALL_TEAMS, "t", "backfill", env_name) == expected


def test_team_env_section_used_only_outside_production():
    conf = {"metaData": {"name": "t.x.v1", "team": "t"}}
    assert resolve_env(conf, SMALL_TEAMS, "t", "backfill", "production")["E"] == "team.prod"
    assert resolve_env(conf, SMALL_TEAMS, "t", "backfill", "staging")["E"] == "team.staging"


def test_unknown_team_is_a_clear_error():
    with pytest.raises(ValueError, match="team 'nope'"):
        resolve_env({"metaData": {}}, SMALL_TEAMS, "nope", "backfill")


# ---------------------------------------------------------------- jar engine


def test_jar_join_argv_yarn(teams, qr):
    job = build_spark_job(qr, QR_PATH, "backfill", teams, engine="jar", env="production",
                          chronon_jar="/opt/chronon/spark_uber-{version}.jar", chronon_version="")
    argv = spark_submit_argv(job, SparkConnection(master="yarn", deploy_mode="client", queue="search_batch"))
    assert argv[:3] == ["spark-submit", "--master", "yarn"]
    tail = argv[argv.index("--class"):]
    assert tail == [
        "--class", "ai.chronon.spark.Driver", "--queue", "search_batch", "--deploy-mode", "client",
        "/opt/chronon/spark_uber-0.0.115.jar",
        "join", "--conf-path", QR_PATH, "--end-date", END_DS, "--start-partition-override", START_DS,
    ]
    confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    assert "spark.sql.shuffle.partitions=2000" in confs
    assert "spark.default.parallelism=2000" in confs
    assert "spark.dynamicAllocation.maxExecutors=500" in confs
    assert "spark.dynamicAllocation.enabled=true" in confs
    assert "spark.chronon.partition.column=ds" in confs
    # env vars travel to the YARN application master as conf
    assert "spark.yarn.appMasterEnv.APP_NAME=chronon_joins_backfill_production_search_query_relevance_v1" in confs
    # consumed keys are flags, not repeated as env
    assert not any(c.startswith("spark.yarn.appMasterEnv.EXECUTOR_MEMORY") for c in confs)
    assert argv[argv.index("--executor-memory") + 1] == "12G"
    assert argv[argv.index("--driver-memory") + 1] == "8G"
    assert argv[argv.index("--executor-cores") + 1] == "2"
    assert argv[argv.index("--name") + 1] == "chronon_joins_backfill_production_search_query_relevance_v1"


def test_jar_group_by_modes(teams, user_stats):
    path = "/repo/production/group_bys/risk/user_txn_stats.v1"
    up = build_spark_job(user_stats, path, "upload", teams, engine="jar", chronon_jar="/c.jar", env="production")
    assert up.application_args == ["group-by-upload", "--conf-path", path, "--end-date", END_DS]
    assert up.executor_cores == 1 and up.executor_memory == "8G" and up.driver_memory is None
    assert up.name == "chronon_group_bys_upload_production_risk_user_txn_stats_v1"
    bf = build_spark_job(user_stats, path, "backfill", teams, engine="jar", chronon_jar="/c.jar", env="production")
    assert bf.application_args == ["group-by-backfill", "--conf-path", path, "--end-date", END_DS,
                                   "--start-partition-override", START_DS]
    assert bf.executor_cores == 4  # risk.production.backfill
    st = build_spark_job(user_stats, path, "streaming", teams, engine="jar", chronon_jar="/c.jar", env="production")
    assert st.application_args == [
        "group-by-streaming", "--conf-path", path,
        "--online-class", "ai.chronon.reference.online.ReferenceOnlineImpl",
        "-Zkv-host=kv.internal", "-Zkv-port=9000",
    ]
    assert st.conf["spark.sql.shuffle.partitions"] == "32"
    assert st.spark_submit_path == "/opt/spark/bin/spark-submit"


def test_mode_to_env_map_wins_in_argv(teams, qr):
    conf = copy.deepcopy(qr)
    conf["metaData"]["modeToEnvMap"] = {"backfill": {"EXECUTOR_MEMORY": "3G", "PARALLELISM": "7"}}
    job = build_spark_job(conf, QR_PATH, "backfill", teams, engine="jar", chronon_jar="/c.jar", env="production")
    assert job.executor_memory == "3G"
    assert job.conf["spark.sql.shuffle.partitions"] == "7"


def test_staging_env_section_wins_over_production(teams, qr):
    t = copy.deepcopy(teams)
    t["search"]["staging"] = {"backfill": {"EXECUTOR_MEMORY": "2G"}}
    job = build_spark_job(qr, QR_PATH, "backfill", t, engine="jar", chronon_jar="/c.jar", env="staging")
    assert job.executor_memory == "2G"
    assert job.name == "chronon_joins_backfill_staging_search_query_relevance_v1"
    prod = build_spark_job(qr, QR_PATH, "backfill", t, engine="jar", chronon_jar="/c.jar", env="production")
    assert prod.executor_memory == "12G"


def test_jar_engine_requires_a_jar(teams, qr):
    with pytest.raises(InvalidConfig, match="chronon_jar"):
        build_spark_job(qr, QR_PATH, "backfill", teams, engine="jar", chronon_jar="")


def test_additional_args_from_custom_json(teams, qr):
    # As upstream run.py: the items joined by spaces and split by its shell, on backfill and upload.
    conf = copy.deepcopy(qr)
    conf["metaData"]["customJson"] = json.dumps({"additional_args": ["--skip-first-hole=false", "--step-days 14"]})
    job = build_spark_job(conf, QR_PATH, "backfill", teams, engine="jar", chronon_jar="/c.jar", env="production")
    assert job.application_args[-3:] == ["--skip-first-hole=false", "--step-days", "14"]
    # The local driver gets them too: it parses the options it knows and names the others when it runs.
    local = build_spark_job(conf, QR_PATH, "backfill", teams, engine="local", env="production")
    assert local.application_args[-2:] == ["--step-days", "14"]
    # Upstream's sample writes a dict there: its keys, as " ".join(dict) gives.
    conf["metaData"]["customJson"] = json.dumps({"additional_args": {"custom_arg": "custom_value"}})
    job = build_spark_job(conf, QR_PATH, "backfill", teams, engine="jar", chronon_jar="/c.jar", env="production")
    assert job.application_args[-1] == "custom_arg"


# ---------------------------------------------------------------- local engine


def test_local_join_argv(teams, qr):
    job = build_spark_job(qr, QR_PATH, "backfill", teams, engine="local", env="production")
    argv = spark_submit_argv(job, start_ds="2024-01-02", end_ds="2024-01-05")
    assert argv == [
        "spark-submit", "--master", "local[2]",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.default.parallelism=2",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.session.timeZone=UTC",
        "--conf", "spark.sql.sources.partitionColumnTypeInference.enabled=false",
        "--conf", "spark.chronon.partition.column=ds",
        "--conf", "spark.chronon.partition.format=yyyy-MM-dd",
        "--name", "chronon_joins_backfill_production_search_query_relevance_v1",
        local_driver_path(),
        "join", "--conf-path", QR_PATH, "--end-date", "2024-01-05", "--start-partition-override", "2024-01-02",
    ]
    assert Path(local_driver_path()).name == "driver.py"
    # The local engine ignores cluster sizing: 8G drivers on a laptop help nobody.
    assert job.executor_memory is None and job.driver_memory is None


def test_job_reads_no_settings(teams, qr, monkeypatch):
    # The deployment is passed in: a setting in the environment changes nothing here.
    monkeypatch.setenv("AIRFLOW__CHRONON__ENGINE", "jar")
    monkeypatch.setenv("AIRFLOW__CHRONON__CHRONON_JAR", "/jars/chronon.jar")
    job = build_spark_job(qr, QR_PATH, "backfill", teams)
    assert job.engine == "local" and job.application == local_driver_path()
    job = build_spark_job(qr, QR_PATH, "backfill", teams, engine="jar", chronon_jar="/jars/chronon.jar")
    assert job.engine == "jar" and job.application == "/jars/chronon.jar"


def test_dates_must_be_dates(teams, qr):
    job = build_spark_job(qr, QR_PATH, "backfill", teams, engine="local", env="production")
    with pytest.raises(InvalidRange, match="end_ds"):
        job.with_dates("2024-01-01", "2024-01-01; rm -rf /")
    with pytest.raises(InvalidRange, match="start_ds"):
        job.with_dates("{{ ds }}", "2024-01-01")


# ---------------------------------------------------------------- hostile names


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "search.x; rm -rf ~"),
        ("name", "search.{{ 7*7 }}"),
        ("name", "--conf=spark.driver.extraJavaOptions"),
        ("name", "a b"),
        ("team", "search$(id)"),
        ("outputNamespace", "ns.evil"),
    ],
)
def test_hostile_names_rejected(teams, qr, field, value):
    conf = copy.deepcopy(qr)
    conf["metaData"][field] = value
    with pytest.raises(InvalidConfig, match=f"metaData.{field}"):
        build_spark_job(conf, QR_PATH, "backfill", teams, engine="local", env="production")


@pytest.mark.parametrize("path", ["-rf", "/repo/--conf/x", "/repo/a\nb", "/repo/a\x00b", ""])
def test_hostile_conf_paths_rejected(teams, qr, path):
    with pytest.raises(InvalidConfig, match="conf_path"):
        build_spark_job(qr, path, "backfill", teams, engine="local", env="production")


def test_repo_root_may_hold_any_printable_character(teams, qr):
    # The root is a deployment setting and argv never meets a shell; file names are the loader's job.
    path = "/srv/My Repos; v2/production/joins/search/query_relevance.v1"
    job = build_spark_job(qr, path, "backfill", teams, engine="local", env="production")
    assert path in job.application_args


def test_hostile_env_values_rejected(teams, qr):
    conf = copy.deepcopy(qr)
    conf["metaData"]["modeToEnvMap"] = {"backfill": {"EXECUTOR_MEMORY": "8G --conf x=y"}}
    with pytest.raises(InvalidConfig, match="EXECUTOR_MEMORY"):
        build_spark_job(conf, QR_PATH, "backfill", teams, engine="jar", chronon_jar="/c.jar", env="production")


def test_unknown_mode_for_type(teams, qr):
    with pytest.raises(InvalidConfig, match="mode 'upload' is not available for joins"):
        build_spark_job(qr, QR_PATH, "upload", teams, engine="local", env="production")


# ---------------------------------------------------------------- parity with the provider's hook


@pytest.mark.parametrize(
    "conn_uri_parts",
    [
        ("spark", "local[2]", None, {}),
        ("spark", "yarn", None, {"deploy-mode": "cluster", "queue": "q1"}),
        ("spark", "spark://master", 7077, {"deploy-mode": "client"}),
    ],
)
@pytest.mark.parametrize("engine", ["jar", "local"])
def test_argv_matches_spark_submit_hook(teams, qr, conn_uri_parts, engine, monkeypatch):
    from airflow.models.connection import Connection
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    conn_type, host, port, extra = conn_uri_parts
    conn = Connection(conn_id="chronon_spark_parity", conn_type=conn_type, host=host, port=port,
                      extra=json.dumps(extra))
    monkeypatch.setenv("AIRFLOW_CONN_CHRONON_SPARK_PARITY", conn.as_json())
    job = build_spark_job(qr, QR_PATH, "backfill", teams, engine=engine, chronon_jar="/c.jar", env="production")
    job = job.with_dates("2024-01-01", "2024-01-03")
    hook = SparkSubmitHook(
        conf=job.conf, conn_id="chronon_spark_parity", jars=job.jars, java_class=job.java_class,
        executor_cores=job.executor_cores, executor_memory=job.executor_memory,
        driver_memory=job.driver_memory, num_executors=job.num_executors, name=job.name,
        application_args=job.application_args, env_vars=job.env_vars,
    )
    expected = hook._build_spark_submit_command(job.application)
    ours = spark_submit_argv(job, SparkConnection.from_airflow(conn_type, host, port, extra))
    assert ours == expected
