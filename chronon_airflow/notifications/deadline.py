"""The landing deadline of a join DAG: an Airflow Deadline alert (SLAs are gone in Airflow 3) whose
callback e-mails the join's owners when a scheduled run's output has not landed
``[chronon] landing_deadline_hours`` after its data interval ended.

:func:`landing_deadline_alert` builds the :class:`~airflow.sdk.DeadlineAlert` the renderer puts on
the DAG: reference = when the run was queued (the scheduler queues a scheduled run when its data
interval ends, and a cleared run's deadline moves with its new queue time), interval = the hours.
A run that succeeds before the deadline removes it (Airflow prunes it); a run
still unfinished, or failed, when the time comes makes the scheduler queue the callback, which runs
in the triggerer (an :class:`~airflow.sdk.AsyncCallback`: this module must be importable there, i.e.
installed). Only scheduled runs alert: a manual run has no interval, and an Airflow backfill of old
dates is late by construction (its deadlines pass as it is created).
"""
from __future__ import annotations

import datetime as dt
import functools
import inspect
import logging
from typing import Any

from chronon_airflow.notifications.email import Email, asend

log = logging.getLogger(__name__)

SCHEDULED = "scheduled"


def landing_deadline_alert(*, interval: dt.timedelta, recipients: list[str], conf_name: str, output_table: str,
                           hours: float, smtp_conn_id: str, from_email: str) -> Any:
    """The DAG's ``deadline=`` argument (kwargs must be JSON: they are stored with the DAG)."""
    # Exported by airflow.sdk at run time; its __init__.pyi stub does not list them.
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference  # type: ignore[attr-defined]

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(landing_deadline_missed, kwargs={
            "recipients": list(recipients), "conf_name": conf_name, "output_table": output_table,
            "hours": hours, "smtp_conn_id": smtp_conn_id, "from_email": from_email}),
        **_name_kwargs(),
    )


@functools.cache
def _name_kwargs() -> dict[str, str]:
    """Airflow 3.3 names alerts (shown in the UI); 3.2's DeadlineAlert has no name. Looked up once
    per process, not once per join DAG at parse time."""
    from airflow.sdk import DeadlineAlert  # type: ignore[attr-defined]

    return {"name": "chronon landing deadline"} if "name" in inspect.signature(DeadlineAlert).parameters else {}


def deadline_email(dag_run: dict[str, Any], deadline: dict[str, Any], *, conf_name: str, output_table: str,
                   hours: float) -> Email:
    start = str(dag_run.get("data_interval_start") or dag_run.get("logical_date") or "")[:10]
    state = dag_run.get("state") or "unknown"
    return Email(
        subject=f"[chronon] {conf_name}: {output_table} not landed for ds {start} "
                f"{hours:g} h after its interval",
        title="Chronon output late",
        rows=[("Config", conf_name), ("DAG", str(dag_run.get("dag_id"))), ("Run", str(dag_run.get("dag_run_id"))),
              ("Partition", start), ("Table", output_table), ("Run state", str(state)),
              ("Deadline", str(deadline.get("deadline_time", "")))],
        action=(f"{output_table} has no partition for {start} yet, {hours:g} hours after the interval ended "
                "([chronon] landing_deadline_hours). Open the run: a partition wait still deferred means an "
                "upstream table is late; a failed task has its own e-mail with the recovery action; queued "
                "tasks mean the pool or the workers are saturated. Nothing is retried by this alert."),
    )


async def landing_deadline_missed(*, context: dict[str, Any] | None = None, recipients: list[str], conf_name: str,
                                  output_table: str, hours: float, smtp_conn_id: str, from_email: str) -> str:
    """The Deadline alert's callback (in the triggerer). Returns what it did (stored by Airflow)."""
    context = context or {}
    dag_run = context.get("dag_run") or {}
    run_type = str(dag_run.get("run_type") or "")
    if run_type != SCHEDULED:
        log.info("deadline of %s run %s ignored: only scheduled runs have a landing deadline", run_type,
                 dag_run.get("dag_run_id"))
        return f"ignored ({run_type} run)"
    if dag_run.get("state") == "success":
        return "ignored (the run succeeded)"
    message = deadline_email(dag_run, context.get("deadline") or {}, conf_name=conf_name,
                             output_table=output_table, hours=hours)
    sent = await asend(message, recipients, smtp_conn_id=smtp_conn_id, from_email=from_email)
    log.info("landing deadline of %s missed: e-mailed %s", dag_run.get("dag_run_id"), sent)
    return f"e-mailed {len(sent)} recipients"
