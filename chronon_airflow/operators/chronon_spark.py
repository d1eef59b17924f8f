"""``ChrononSparkSubmitOperator``: runs one :class:`~chronon_airflow.spark.SparkJob` with spark-submit.

A thin subclass of the provider's ``SparkSubmitOperator``. Differences, and why:

* Only ``start_ds`` and ``end_ds`` are template fields. The parent templates ``application``,
  ``application_args``, ``name``, ``conf``, ``env_vars`` …, which would feed config strings to
  Jinja; here nothing derived from a Chronon config ever is. The rendered dates are validated as
  ``YYYY-MM-DD`` and swapped into the argv placeholders at execute time. Dates not given (the
  generated DAGs give none) are the run's partition range, resolved at execute time.
* ``durable=True`` by default: on YARN cluster / Kubernetes / standalone cluster deployments the
  provider (6.3, Airflow 3.3) stores the submitted application's id and a retry re-attaches to it
  instead of submitting twice. In local/client mode there is nothing to re-attach to and the
  provider submits normally.
* The ``spark-submit`` that runs is pinned: the provider only accepts the bare name
  ``spark-submit`` and looks it up on PATH, so for the local engine the folder of
  ``sys.executable`` (the venv's ``bin``, where the pyspark wheel installs ``spark-submit``) is put
  first on this task process's PATH for the duration of the submit; for the jar engine the folder
  of teams.json's ``SPARK_SUBMIT_PATH`` is, when that file exists.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from chronon_airflow import settings
from chronon_airflow.lineage import ChrononLineageMixin
from chronon_airflow.links.spark import (
    APP_ID_XCOM_KEY,
    APP_URL_XCOM_KEY,
    URL_TEMPLATE_EXTRA,
    SparkApplicationLink,
    SparkApplicationWatcher,
)
from chronon_airflow.partitions import task_range
from chronon_airflow.spark.job import SparkJob, local_skip_reason


class ChrononSparkSubmitOperator(ChrononLineageMixin, SparkSubmitOperator):
    template_fields: Sequence[str] = ("start_ds", "end_ds")
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    ui_color = "#f4a460"
    operator_extra_links = (SparkApplicationLink(),)

    def __init__(
        self,
        *,
        job: SparkJob | dict[str, Any],
        start_ds: str | None = None,
        end_ds: str | None = None,
        conn_id: str | None = None,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=conn_id or settings.get("spark_conn_id"), durable=durable, **kwargs)
        self._set_task_args(job=job)
        self.start_ds = start_ds
        self.end_ds = end_ds
        # What spark-submit printed about its application (links/spark.py): the "Spark
        # application" button and the failure e-mail show it.
        self.spark_application_id: str | None = None
        self.spark_application_url: str = ""
        self._watcher: SparkApplicationWatcher | None = None

    def _set_task_args(self, *, job: SparkJob | dict[str, Any]) -> None:
        """What makes this task this task: its job. ``__init__`` calls it, and so does the render
        layer when it builds the task as a copy of another of the same kind
        (:mod:`chronon_airflow.render.prototypes`): one place maps a job to the operator.

        The provider's own attributes for these arguments, as its ``__init__`` sets them from
        ``application=``, ``conf=`` ... (``tests/unit/render/test_prototypes.py`` checks it against the
        provider's constructor)."""
        if isinstance(job, dict):
            job = SparkJob(**job)
        self.job = job
        self.application = job.application
        self.conf = dict(job.conf)
        self.jars = job.jars
        self._java_class = job.java_class
        self._executor_cores = job.executor_cores
        self._executor_memory = job.executor_memory
        self._driver_memory = job.driver_memory
        self._num_executors = job.num_executors
        self.name = job.name
        self.application_args = list(job.application_args)
        self.env_vars = dict(job.env_vars)

    def _runtime_env(self) -> dict[str, str]:
        env = dict(self.job.env_vars)
        if self.job.engine == "local":
            # Read at run time: the warehouse is a worker-side setting, not part of the plan.
            env.setdefault("CHRONON_WAREHOUSE", str(settings.warehouse()))
            # The driver and its Python workers must be this venv's interpreter (it has pyspark and
            # chronon_airflow installed), whatever "python3" on PATH is.
            env.setdefault("PYSPARK_PYTHON", sys.executable)
            env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        return env

    def _spark_submit_dir(self) -> str | None:
        if self.job.engine == "local":
            return str(Path(sys.executable).parent)
        if self.job.spark_submit_path and Path(self.job.spark_submit_path).exists():
            return str(Path(self.job.spark_submit_path).parent)
        return None

    def _check_local_connection(self) -> None:
        """The provider silently falls back to master "yarn" when the connection is missing;
        for the local engine that would be a confusing failure, so say what to define instead."""
        from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

        try:
            BaseHook.get_connection(self._conn_id)
        except AirflowNotFoundException:
            raise RuntimeError(
                f"Spark connection {self._conn_id!r} is not defined. For the local engine define it, e.g. "
                f"AIRFLOW_CONN_{self._conn_id.upper()}='{{\"conn_type\": \"spark\", \"host\": \"local[2]\"}}'"
            ) from None

    def execute(self, context: Any) -> None:
        reason = local_skip_reason(self.job)
        if reason:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(reason)
        if self.job.takes_dates or self.outlets:
            # Dates not given (the generated DAGs give none): the run's range.
            self.start_ds, self.end_ds = task_range(self.start_ds, self.end_ds, context)
        job = self.job.with_dates(self.start_ds, self.end_ds)
        self.application_args = list(job.application_args)
        self.env_vars = self._runtime_env()
        self._hook = None  # rebuild with this run's arguments
        if self.job.engine == "local":
            self._check_local_connection()
        self.log.info("Chronon %s %s (%s engine) for %s..%s", self.job.subcommand, self.job.name,
                      self.job.engine, self.start_ds, self.end_ds)
        bin_dir = self._spark_submit_dir()
        old_path = os.environ.get("PATH", "")
        if bin_dir:
            os.environ["PATH"] = f"{bin_dir}{os.pathsep}{old_path}"
        self._watcher = SparkApplicationWatcher()
        try:
            super().execute(context)
        finally:
            os.environ["PATH"] = old_path
            self._record_application(context)
        self._mark_outlets(context)

    def _get_hook(self):
        """The provider's hook, with the submit log read by the application watcher on its way."""
        hook = super()._get_hook()
        process = hook._process_spark_submit_log
        watcher = self._watcher

        def watched(itr: Any) -> None:
            return process(watcher.watch(itr) if watcher is not None else itr)

        hook._process_spark_submit_log = watched
        return hook

    def _record_application(self, context: Any) -> None:
        """Push the application id and URL spark-submit printed (nothing when it printed none)."""
        watcher = self._watcher
        if watcher is None or not (watcher.app_id or watcher.tracking_url or watcher.ui_url):
            return
        template = None
        try:
            from airflow.sdk import BaseHook

            template = (BaseHook.get_connection(self._conn_id).extra_dejson or {}).get(URL_TEMPLATE_EXTRA)
        except Exception:  # the link is a convenience: a connection lookup never fails the task
            pass
        self.spark_application_id = watcher.app_id
        self.spark_application_url = watcher.url(template)
        self.log.info("Spark application %s %s", watcher.app_id or "(id not printed)",
                      self.spark_application_url or "(no UI URL)")
        try:
            ti = context["ti"]
            ti.xcom_push(key=APP_ID_XCOM_KEY, value=self.spark_application_id)
            ti.xcom_push(key=APP_URL_XCOM_KEY, value=self.spark_application_url)
        except Exception as e:
            self.log.warning("could not record the Spark application: %s", e)

    def chronon_links(self, context: Any) -> list[tuple[str, str]]:
        """For the failure e-mail: the Spark application spark-submit reported, if any."""
        if not (self.spark_application_id or self.spark_application_url):
            return []
        label = f"Spark application {self.spark_application_id or ''}".strip()
        return [(label, self.spark_application_url or "(no UI URL: see the task log)")]

    def _mark_outlets(self, context: Any) -> None:
        """Each outlet (the table this job wrote) gets the run's range in its asset event's extra:
        downstream asset-triggered DAGs (a chained GroupBy) read their partitions from it."""
        for outlet in self.outlets or ():
            context["outlet_events"][outlet].extra = {"start_ds": self.start_ds, "end_ds": self.end_ds}
