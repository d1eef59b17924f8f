"""Failure e-mails through the smtp provider's notifier (``email_on_failure`` is deprecated in 3.x).

Every task of every generated DAG carries one of these, so the notifier is built at each parse; the
provider's ``SmtpNotifier`` (with smtplib, aiosmtplib and the e-mail MIME modules, ~6 ms to import)
is only imported when a failure is actually sent, i.e. the notifier delegates instead of inheriting.
"""
from __future__ import annotations

import html
import re
from typing import Any, Iterable

from airflow.sdk import BaseNotifier

from chronon_airflow import settings
from chronon_airflow.partitions import PartitionRangeError, range_from_context

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$")


def valid_recipients(addresses: Iterable[str]) -> list[str]:
    """Drop anything that is not a plain address: recipients come from configs."""
    return list(dict.fromkeys(a for a in addresses if isinstance(a, str) and _EMAIL.match(a)))


class ChrononFailureNotifier(BaseNotifier):
    """E-mails the team's ``maintainer_emails`` (and customJson owners) when a task fails.

    Subject and body are built in Python at send time and HTML-escaped, then sent by the smtp
    provider's ``SmtpNotifier`` (its ``notify``, which renders no template when both are given).
    Nothing here is a Jinja template, so a config string or an error message can never be
    evaluated. Give every task its own instance, as Airflow asks of notifiers.
    """

    template_fields = ()

    def __init__(self, *, recipients: Iterable[str], conf_name: str | None, smtp_conn_id: str | None = None,
                 from_email: str | None = None) -> None:
        super().__init__()
        self.to = valid_recipients(recipients)
        self.from_email = from_email or settings.get("email_from")
        self.smtp_conn_id = smtp_conn_id or settings.get("smtp_conn_id")
        self.conf_name = conf_name

    @staticmethod
    def describe(context: dict[str, Any], conf_name: str | None) -> tuple[str, str]:
        ti = context["ti"]
        try:
            start, end = range_from_context(context)
            ds_range = start if start == end else f"{start}..{end}"
        except PartitionRangeError as e:
            ds_range = f"unknown ({e})"
        error = str(context.get("exception") or "see the log")
        what = conf_name or ti.dag_id
        subject = f"[chronon] {what}: task {ti.task_id} failed for {ds_range}"
        rows = [
            ("Config", what), ("DAG", ti.dag_id), ("Task", ti.task_id), ("Run", ti.run_id),
            ("Partitions", ds_range), ("Try", str(ti.try_number)), ("Error", error),
        ]
        body = "<h3>Chronon task failed</h3><table>" + "".join(
            f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
        ) + f"</table><p>Log: <a href=\"{html.escape(ti.log_url)}\">{html.escape(ti.log_url)}</a></p>"
        return subject, body

    def notify(self, context: dict[str, Any]) -> None:
        if not self.to:
            self.log.warning("no valid recipients for %s: failure e-mail not sent", self.conf_name)
            return
        subject, body = self.describe(context, self.conf_name)
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=self.to, from_email=self.from_email, smtp_conn_id=self.smtp_conn_id,
                     subject=subject, html_content=body).notify(context)
