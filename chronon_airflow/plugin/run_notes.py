"""Run notes: every run of a generated DAG that computes a partition range shows that range in
the UI, as the run's note, from the moment it starts.

A listener of the ``chronon`` plugin (``on_dag_run_running``, called by the scheduler when a run
starts): it resolves the run's range the way its tasks will (:func:`chronon_airflow.partitions.
resolve_range`: the ``start_ds``/``end_ds`` conf of a manual run, the range of the asset event
that triggered it, else its data interval) and writes one line to the run's note, e.g.
``Chronon: computes ds 2024-04-20..2024-04-21 (2 partitions) from the run's start_ds/end_ds``. A
range that will be refused (reversed, too long, a conf range given to an Airflow backfill) is
noted as such, so the UI says why the run's ``check_range`` task fails. A note a user wrote is
kept: the line is added below it (and replaced, not repeated, when a cleared run starts again).

Only DAGs whose params hold ``start_ds`` (every generated DAG that takes a range) get a note. The
listener never raises: a note is a convenience, never a reason for the scheduler to stumble.
"""
from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from chronon_airflow.exceptions import InvalidRange
from chronon_airflow.partitions import describe_range, resolve_range, run_type

log = logging.getLogger(__name__)

PREFIX = "Chronon: "


def range_note(dag_run: Any) -> str | None:
    """The note line for ``dag_run``, or ``None`` when its DAG takes no range."""
    dag = getattr(dag_run, "dag", None)
    params = getattr(dag, "params", None)
    try:
        if params is None or "start_ds" not in params:
            return None
    except TypeError:
        return None
    conf = getattr(dag_run, "conf", None) or {}
    given = {"start_ds": conf.get("start_ds"), "end_ds": conf.get("end_ds")}
    events = list(getattr(dag_run, "consumed_asset_events", None) or [])
    try:
        start, end = resolve_range(given, getattr(dag_run, "data_interval_start", None),
                                   getattr(dag_run, "logical_date", None), {"events": events}, dag_run)
    except InvalidRange as e:
        return f"{PREFIX}refused, its check_range task fails and nothing runs: {e}"
    if given["start_ds"] or given["end_ds"]:
        source = "the run's start_ds/end_ds"
    elif any("start_ds" in (getattr(e, "extra", None) or {}) for e in events):
        source = "the asset event that triggered it"
    else:
        source = f"its data interval ({run_type(dag_run) or 'run'})"
    return f"{PREFIX}computes ds {describe_range(start, end)} from {source}"


def with_line(note: str | None, line: str) -> str:
    """``note`` with its ``Chronon:`` line replaced by ``line`` (added when there is none)."""
    kept = [text for text in (note or "").splitlines() if not text.startswith(PREFIX)]
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n\n".join(part for part in ("\n".join(kept), line) if part)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    try:
        line = range_note(dag_run)
        if line is None:
            return
        note = with_line(dag_run.note, line)
        if note != dag_run.note:
            dag_run.note = note
    except Exception:  # never the scheduler's problem
        log.exception("could not write the Chronon range note of %s", getattr(dag_run, "run_id", dag_run))
