"""The "Spark application" button of the Chronon Spark tasks, and the watcher that finds the
application in the spark-submit output.

:class:`SparkApplicationWatcher` reads the lines spark-submit prints (the Spark provider's hook
logs each of them; the watcher sees them first) for the application id (YARN ``application_…``,
standalone ``app-…``, Kubernetes ``spark-…``, ``local-…``) and a URL: YARN's ``tracking URL``,
else the driver's Spark UI (``Bound SparkUI to …, and started at http://…``), else the Spark
connection's ``extra.application_url_template`` with ``{app_id}`` replaced (e.g. a standalone
master's ``http://master:8080/app/?appId={app_id}`` or a history server's
``http://history:18080/history/{app_id}``). The operator pushes both to XCom and the failure
e-mail shows them.

:class:`SparkApplicationLink` is declared by ``ChrononSparkSubmitOperator``: in the worker, at the
end of each try, Airflow calls it on the live operator and stores the URL; the API server shows
the stored URL. Only http(s) URLs without user info are returned.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from airflow.sdk import BaseOperatorLink

from chronon_airflow.links.model_backend import safe_http_url

log = logging.getLogger(__name__)

LINK_NAME = "Spark application"
LINK_XCOM_KEY = "_link_chronon_spark_application"
APP_ID_XCOM_KEY = "spark_application_id"
APP_URL_XCOM_KEY = "spark_application_url"
URL_TEMPLATE_EXTRA = "application_url_template"

_TRACKING_URL = re.compile(r"tracking URL: (https?://\S+)")
_SPARK_UI = re.compile(r"(?:and started at|Spark Web UI (?:available )?at|Web UI available at) (https?://\S+)")
_APP_IDS = (
    re.compile(r"\b(application_\d+_\d+)\b"),  # YARN
    re.compile(r"\b(app-\d{14}-\d{4,})\b"),  # standalone master
    re.compile(r"spark-app-selector -> (spark-[a-z0-9]+)"),  # Kubernetes
    re.compile(r"\b(local-\d{10,})\b"),  # local master
)


class SparkApplicationWatcher:
    """What one spark-submit said about its application: ``app_id``, ``tracking_url``, ``ui_url``."""

    def __init__(self) -> None:
        self.app_id: str | None = None
        self.tracking_url: str | None = None
        self.ui_url: str | None = None

    def feed(self, line: Any) -> None:
        text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
        if self.tracking_url is None and (m := _TRACKING_URL.search(text)):
            self.tracking_url = m.group(1).rstrip(".,;")
        if self.ui_url is None and (m := _SPARK_UI.search(text)):
            self.ui_url = m.group(1).rstrip(".,;")
        if self.app_id is None:
            for pattern in _APP_IDS:
                if m := pattern.search(text):
                    self.app_id = m.group(1)
                    break

    def watch(self, lines: Iterable[Any]) -> Iterator[Any]:
        for line in lines:
            self.feed(line)
            yield line

    def url(self, template: str | None = None) -> str:
        """The application's page: YARN tracking URL, the driver's UI, else ``template``."""
        for candidate in (self.tracking_url, self.ui_url):
            if candidate and safe_http_url(candidate):
                return safe_http_url(candidate)
        if template and self.app_id:
            # Plain replacement, not str.format: a template is connection data, not code.
            return safe_http_url(str(template).replace("{app_id}", self.app_id))
        return ""


class SparkApplicationLink(BaseOperatorLink):
    """Declared by ``ChrononSparkSubmitOperator`` (``operator_extra_links``)."""

    name = LINK_NAME

    @property
    def xcom_key(self) -> str:
        return LINK_XCOM_KEY

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        try:
            url = getattr(operator, "spark_application_url", "") or ""
            if not url and hasattr(ti_key, "xcom_pull"):
                url = ti_key.xcom_pull(task_ids=ti_key.task_id, key=APP_URL_XCOM_KEY) or ""
            return safe_http_url(url) if isinstance(url, str) and url else ""
        except Exception:  # a broken link must never break the task or the task page
            log.exception("cannot build the %r link of %s", self.name, ti_key)
            return ""
