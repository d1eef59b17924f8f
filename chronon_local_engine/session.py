"""The SparkSession the local engine runs in."""
from __future__ import annotations

import atexit
import shutil
import tempfile

from pyspark.sql import SparkSession

from chronon_airflow.spark.job import LOCAL_CONF


def local_session(app_name: str = "chronon-local-engine", master: str | None = None) -> SparkSession:
    """Get (or create) the session with the local engine's settings.

    Under spark-submit the master and the same settings already come from the command line;
    ``master`` and ``app_name`` are for in-process use (tests, the sample-data CLI).

    The catalog is Spark's in-memory one (staging queries register the warehouse tables in it, see
    ``staging_query.register_warehouse_tables``); its own warehouse folder, where Spark creates the
    ``default`` database the first time the catalog is used, is a temporary folder removed at exit
    rather than ``./spark-warehouse`` in the task's working directory.
    """
    builder = SparkSession.builder
    if master:
        builder = builder.appName(app_name).master(master)
    # Under spark-submit the application keeps the name its --name gave it (upstream's
    # chronon_<conf type>_<mode>_<env>_<name>, what the Spark UI and the task's link show):
    # appName() here would override it.
    for key, value in LOCAL_CONF.items():
        builder = builder.config(key, value)
    if SparkSession.getActiveSession() is None:
        catalog_dir = tempfile.mkdtemp(prefix="chronon-local-engine-catalog-")
        atexit.register(shutil.rmtree, catalog_dir, ignore_errors=True)
        builder = (builder.config("spark.sql.catalogImplementation", "in-memory")
                   .config("spark.sql.warehouse.dir", catalog_dir))
    spark = builder.getOrCreate()
    # INFO logging of every stage would bury the one line a task log reader needs.
    spark.sparkContext.setLogLevel("WARN")
    return spark
