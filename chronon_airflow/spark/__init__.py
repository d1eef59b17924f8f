"""Chronon Spark jobs: env resolution, the job description and its spark-submit argv (no Airflow import)."""
from chronon_airflow.spark.env import env_layers, env_sources, resolve_env
from chronon_airflow.spark.job import (
    CHRONON_DRIVER_CLASS,
    END_DS,
    LOCAL_CONNECTION,
    START_DS,
    SparkConnection,
    SparkJob,
    app_name,
    build_spark_job,
    job_warnings,
    local_driver_path,
    spark_submit_argv,
    validate_conf_path,
    validate_name,
)

__all__ = [
    "CHRONON_DRIVER_CLASS", "END_DS", "LOCAL_CONNECTION", "local_driver_path", "START_DS", "SparkConnection",
    "SparkJob", "app_name", "build_spark_job", "job_warnings", "env_layers", "env_sources", "resolve_env",
    "spark_submit_argv", "validate_conf_path", "validate_name",
]
