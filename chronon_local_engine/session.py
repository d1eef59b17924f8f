"""The SparkSession the local engine runs in."""
from __future__ import annotations

from pyspark.sql import SparkSession

from chronon_airflow.spark.job import LOCAL_CONF


def local_session(app_name: str = "chronon-local-engine", master: str | None = None) -> SparkSession:
    """Get (or create) the session with the local engine's settings.

    Under spark-submit the master and the same settings already come from the command line;
    ``master`` is for in-process use (tests, the sample-data CLI).
    """
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # INFO logging of every stage would bury the one line a task log reader needs.
    spark.sparkContext.setLogLevel("WARN")
    return spark
