"""Failure e-mails through the smtp provider (``email_on_failure`` is deprecated in Airflow 3).

Every generated task carries a :class:`ChrononFailureNotifier` as its ``on_failure_callback``, which
Airflow calls once, when the task has failed for good: a try that will be retried sends nothing.
The e-mail (:mod:`chronon_airflow.notifications.email`, plain text and HTML) names the config, the
run and its partition range, the error, the links a reader needs (the task log, the model backend's
job page, the Spark application) and **what to do**: the exact recovery action for that kind of
task and that error.

Every task of every generated DAG carries one of these, so the notifier is built at each parse; the
smtp provider (smtplib, aiosmtplib, the MIME modules) is only imported when a failure is sent.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from chronon_airflow import settings
from chronon_airflow.notifications.email import Email, send, valid_recipients
from chronon_airflow.partitions import PartitionRangeError, range_from_context
from chronon_airflow.plan import model as pm

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["ChrononFailureNotifier", "recovery_action", "valid_recipients"]

_SPARK_KINDS = {pm.RAW_JOIN, pm.JOIN, pm.LABEL_JOIN, pm.STATS_SUMMARY, pm.CONSISTENCY_METRICS, pm.LOG_FLATTENER,
                pm.METADATA_UPLOAD_TASK, pm.STAGING_QUERY_TASK, pm.GROUP_BY_UPLOAD_TASK, pm.GROUP_BY_BACKFILL_TASK}


def _clear(task_id: str, run_id: str, downstream: bool = True) -> str:
    return (f"clear task {task_id} of run {run_id}" + (" with its downstream tasks" if downstream else "")
            + " (UI: the task instance > Clear" + (" > Downstream" if downstream else "") + ")")


def recovery_action(kind: str | None, task_id: str, run_id: str, error: str, source: str | None = None) -> str:
    """The exact recovery action for a task of ``kind`` that failed for good with ``error``."""
    where = f" in {source}" if source else ""
    if kind == pm.CHECK_RANGE:
        if "Airflow backfill" in error:
            return ("Nothing ran for this run. Create the backfill again without start_ds/end_ds in its conf "
                    "(UI Backfill: leave 'Override existing params' unticked; CLI: no --dag-run-conf) so each "
                    "run computes its own interval, or trigger one manual run with start_ds and end_ds.")
        return ("Nothing ran for this run. Trigger the DAG again with a valid range: start_ds and end_ds as "
                "YYYY-MM-DD, start_ds <= end_ds, at most [chronon] max_range_days partitions.")
    if kind == pm.WAIT_FOR_BATCH_INFERENCE:
        if "did not end within" in error or "may still be running" in error:
            return ("The job may still be running on the backend (see its page). "
                    + _clear(task_id, run_id).capitalize()
                    + ": the same range gets the same idempotency key, so the task re-attaches to that job.")
        if "refused" in error or "not registered" in error:
            return (f"The backend refused the job: fix the join's model transforms{where} and recompile (or let the "
                    f"metadata upload re-register them), then {_clear(task_id, run_id)}.")
        return ("The backend's batch job failed on every try (its message is in the error above, its page "
                f"under Links). Fix the cause on the backend, then {_clear(task_id, run_id)}: it submits a new "
                "job (a job that ended FAILED or CANCELLED is never reused). Only if the raw join's output was "
                "wrong, clear raw_join with its downstream tasks instead.")
    if kind == pm.WAIT_FOR_PARTITION:
        return ("The partitions named in the error did not land before the sensor's timeout ([chronon] "
                f"sensor_timeout); nothing downstream ran. Once the upstream job has written them, "
                f"{_clear(task_id, run_id)}.")
    if kind in (pm.REGISTER_MODEL, pm.REGISTER_MODEL_TRANSFORM):
        if "rejected" in error:
            return (f"The backend rejected the config: fix it{where} and recompile; then {_clear(task_id, run_id)} "
                    "(or trigger the range again).")
        return (f"The backend could not be reached or failed: check its Airflow connection and health, then "
                f"{_clear(task_id, run_id)}.")
    if kind == pm.REGISTER_TEAM_MODEL_TRANSFORMS:
        return ("Each failed join's owners got its backend message in a separate e-mail: fix those configs and "
                "recompile; the next metadata-upload run (every 20 minutes) registers them again.")
    if kind == pm.CONFIG_ERROR_TASK:
        return (f"Fix the file{where} (chronon-airflow validate lists the same errors) and recompile it; this "
                "task disappears once the file is clean. You get this e-mail again only if its errors change.")
    if kind == pm.GROUP_BY_STREAMING_TASK:
        return ("Read the task log and the Spark application's log; once fixed, the keeper's next run (every "
                "20 minutes) submits the streaming job again, or " + _clear(task_id, run_id, False) + ".")
    if kind in _SPARK_KINDS:
        return ("Read the Spark application's log (under Links, or the task log) for the cause. Once fixed, "
                + _clear(task_id, run_id) + ": the job overwrites whole partitions of the range, so a rerun "
                "is safe.")
    return f"Fix the cause shown in the log, then {_clear(task_id, run_id)}."


def _range_text(context: Mapping[str, Any]) -> str:
    try:
        start, end = range_from_context(context)
        return start if start == end else f"{start}..{end}"
    except PartitionRangeError as e:
        return f"unknown ({e})"


class ChrononFailureNotifier(BaseNotifier):
    """E-mails ``recipients`` (the team's ``maintainer_emails`` and the config's owners) when a task
    fails for good. ``task_kind`` (the plan's task kind) picks the recovery action; ``source`` is
    the config file. A task may declare ``chronon_links(context) -> [(label, url)]`` (links for the
    e-mail) and ``should_alert(context) -> bool`` (False: this failure was already reported).

    Nothing is a Jinja template here, so a config string or an error message is never evaluated.
    Give every task its own instance, as Airflow asks of notifiers.
    """

    template_fields = ()

    def __init__(self, *, recipients: Iterable[str], conf_name: str | None, smtp_conn_id: str | None = None,
                 from_email: str | None = None, task_kind: str | None = None, source: str | None = None) -> None:
        super().__init__()
        self.to = valid_recipients(recipients)
        self.from_email = from_email or settings.get("email_from")
        self.smtp_conn_id = smtp_conn_id or settings.get("smtp_conn_id")
        self.conf_name = conf_name
        self.task_kind = task_kind
        self.source = source

    def message(self, context: Mapping[str, Any]) -> Email:
        ti = context["ti"]
        task = context.get("task")
        ds_range = "" if self.task_kind == pm.CONFIG_ERROR_TASK else _range_text(context)
        error = str(context.get("exception") or "see the log")
        what = self.conf_name or ti.dag_id
        max_tries = getattr(task, "retries", None)
        tries = f"{ti.try_number} of {max_tries + 1}" if isinstance(max_tries, int) else str(ti.try_number)
        broken_file = self.task_kind == pm.CONFIG_ERROR_TASK
        rows = [] if broken_file else [("Config", what)]
        if self.source:
            rows.append(("File", self.source))
        rows += [("DAG", ti.dag_id), ("Task", ti.task_id), ("Run", ti.run_id)]
        if not broken_file:
            rows += [("Partitions", ds_range), ("Try", tries)]
        rows.append(("Error", error))
        links: list[tuple[str, str]] = []
        extra = getattr(task, "chronon_links", None)
        if callable(extra):
            try:
                links += list(extra(context))
            except Exception as e:  # a link is a convenience: never lose the e-mail over it
                self.log.warning("no extra links for the failure e-mail: %s", e)
        links.append(("Task log", getattr(ti, "log_url", "") or "(no log URL)"))
        return Email(
            subject=(f"[chronon] broken config {self.source}: fix it (chronon-airflow validate)" if broken_file
                     else f"[chronon] {what}: task {ti.task_id} failed for {ds_range}"),
            title="Chronon config file broken" if broken_file else "Chronon task failed",
            rows=rows,
            action=recovery_action(self.task_kind, ti.task_id, ti.run_id, error, self.source),
            links=links,
        )

    def notify(self, context: Context) -> None:
        if not self.to:
            self.log.warning("no valid recipients for %s: failure e-mail not sent", self.conf_name)
            return
        task = context.get("task")
        should_alert = getattr(task, "should_alert", None)
        if callable(should_alert) and not should_alert(context):
            self.log.info("this failure was already e-mailed (same errors as before): not sent again")
            return
        send(self.message(context), self.to, smtp_conn_id=self.smtp_conn_id, from_email=self.from_email)
