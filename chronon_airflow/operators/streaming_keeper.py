"""Keeps a chained GroupBy's streaming job alive: every run submits ``group-by-streaming`` unless
the job is already running on the cluster."""
from __future__ import annotations

from typing import Any

import httpx
from airflow.sdk.exceptions import AirflowSkipException

from chronon_airflow.operators.chronon_spark import ChrononSparkSubmitOperator

RM_ADDRESS_EXTRA = "yarn_resourcemanager_webapp_address"  # the key the Spark provider itself reads
LIVE_STATES = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING"


class ChrononStreamingKeeperOperator(ChrononSparkSubmitOperator):
    """Submits the streaming job (``spark.yarn.submit.waitAppCompletion=false``, so the task ends
    once the job is accepted) when YARN has no live application of that name.

    The local engine has no streaming: with ``[chronon] engine = local`` the task is skipped with
    that reason. In production the Spark connection's extra must name the ResourceManager
    (``yarn_resourcemanager_webapp_address``), as for the provider's own YARN tracking.
    """

    ui_color = "#d5f5e3"

    def _set_task_args(self, **kwargs: Any) -> None:
        super()._set_task_args(**kwargs)
        self.conf = {**(self.conf or {}), "spark.yarn.submit.waitAppCompletion": "false"}

    def running_application(self) -> str | None:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self._conn_id)
        address = (conn.extra_dejson.get(RM_ADDRESS_EXTRA) or "").strip()
        if not address:
            raise ValueError(f"the Spark connection {self._conn_id!r} needs extra.{RM_ADDRESS_EXTRA} "
                             "so the keeper can see whether the streaming job runs")
        url = (address if "://" in address else f"http://{address}").rstrip("/") + "/ws/v1/cluster/apps"
        response = httpx.get(url, params={"states": LIVE_STATES, "applicationTypes": "SPARK"}, timeout=30)
        response.raise_for_status()
        apps = ((response.json() or {}).get("apps") or {}).get("app") or []
        return next((a["id"] for a in apps if a.get("name") == self.job.name), None)

    def execute(self, context: Any) -> Any:
        if self.job.engine == "local":
            raise AirflowSkipException("the local engine has no streaming: group-by-streaming runs only with the "
                                       "Chronon jar ([chronon] engine = jar)")
        app = self.running_application()
        if app:
            self.log.info("streaming job %s is running as %s; nothing to do", self.job.name, app)
            return app
        self.log.info("streaming job %s is not running: submitting it", self.job.name)
        return super().execute(context)
