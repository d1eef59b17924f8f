"""Daily partitions (``ds``): the package's one module for parsing, shifting and ranging them, and
which partitions a DAG run covers. Pure: no Airflow import.

A ds is a zero-padded ``YYYY-MM-DD`` string between :data:`MIN_DS` and :data:`MAX_DS`; a range is
at most ``[chronon] max_range_days`` partitions (default :data:`MAX_RANGE_DAYS`). The loader, the
Spark job description, the sensors, the macros and the tools all check dates through here.

A scheduled or backfill run covers the one ds of its data interval (a backfill given a
``start_ds``/``end_ds`` conf is refused, never applied to every run). A manual run takes the
``start_ds`` / ``end_ds`` params. An asset-triggered run takes the range that the upstream run
wrote, from the asset events' ``extra``. In Airflow 3 manual and asset-triggered runs may have no
logical date, so ``ds`` alone is never enough.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from chronon_airflow.exceptions import InvalidRange

# A range longer than this is almost surely a typo (10 years of partitions); [chronon]
# max_range_days overrides it.
MAX_RANGE_DAYS = 3660
# Dates a partition may have: anything else in a config or a run's params is a typo.
MIN_DS, MAX_DS = dt.date(1970, 1, 1), dt.date(2200, 12, 31)
_DS = re.compile(r"\d{4}-\d{2}-\d{2}")

# The historical name of InvalidRange, kept for callers that catch it.
PartitionRangeError = InvalidRange


def parse_ds(value: Any, what: str = "ds") -> dt.date:
    """A ``datetime``/``date`` as is, or a zero-padded ``YYYY-MM-DD`` string within the bounds."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _DS.fullmatch(value):
        raise InvalidRange(f"{what} = {value!r} is not a YYYY-MM-DD date")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRange(f"{what} = {value!r} is not a YYYY-MM-DD date") from None
    if not MIN_DS <= day <= MAX_DS:
        raise InvalidRange(f"{what} = {value!r} is outside {MIN_DS}..{MAX_DS}")
    return day


def check_ds(value: Any, what: str = "ds") -> str:
    """``value`` itself when it is a valid ds string (see :func:`parse_ds`), else :class:`InvalidRange`."""
    if not isinstance(value, str):
        raise InvalidRange(f"{what} = {value!r} is not a YYYY-MM-DD date")
    parse_ds(value, what)
    return value


def max_range_days() -> int:
    from chronon_airflow import settings

    try:
        return max(1, int(settings.get("max_range_days") or MAX_RANGE_DAYS))
    except ValueError:
        return MAX_RANGE_DAYS


def ds_argument(value: str) -> str:
    """An argparse ``type=`` for a ``YYYY-MM-DD`` partition (the CLIs and the local-engine driver)."""
    import argparse

    try:
        parse_ds(value, "date")
    except InvalidRange:
        raise argparse.ArgumentTypeError(f"{value!r} is not a YYYY-MM-DD date") from None
    return value


def check_range(start: Any, end: Any, limit: int | None = None) -> tuple[str, str]:
    """``(start, end)`` as ds strings: both valid, ``start <= end``, at most ``limit`` partitions
    (default ``[chronon] max_range_days``)."""
    s, e = parse_ds(start, "start_ds"), parse_ds(end, "end_ds")
    if s > e:
        raise InvalidRange(f"start_ds {s} is after end_ds {e}")
    limit = limit or max_range_days()
    if (e - s).days >= limit:
        raise InvalidRange(f"{s}..{e} spans {(e - s).days + 1} partitions, more than {limit} "
                           "([chronon] max_range_days)")
    return s.isoformat(), e.isoformat()


def ds_range(start: str, end: str) -> list[str]:
    s, e = parse_ds(start, "start_ds"), parse_ds(end, "end_ds")
    return [(s + dt.timedelta(days=i)).isoformat() for i in range((e - s).days + 1)]


def ds_add(ds: str, days: int) -> str:
    return (parse_ds(ds, "ds") + dt.timedelta(days=days)).isoformat()


def _events_range(triggering_asset_events: Mapping[Any, Iterable[Any]] | None) -> tuple[str, str] | None:
    starts, ends = [], []
    for events in (triggering_asset_events or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "start_ds" in extra and "end_ds" in extra:
                s, e = check_range(extra["start_ds"], extra["end_ds"])
                starts.append(s)
                ends.append(e)
    return (min(starts), max(ends)) if starts else None


BACKFILL_RUN_TYPE = "backfill"


def _defined(value: Any) -> Any:
    """``value``, or ``None`` for a Jinja ``Undefined`` (a template variable the context lacks)."""
    return None if type(value).__module__.startswith("jinja2") and "Undefined" in type(value).__name__ else value


def run_type(dag_run: Any) -> str | None:
    """The run type of a DagRun (object or API dict) as a string (``"backfill"``, ``"manual"`` ...)."""
    if dag_run is None:
        return None
    value = dag_run.get("run_type") if isinstance(dag_run, Mapping) else getattr(dag_run, "run_type", None)
    return getattr(value, "value", value)


def backfill_conf_refusal(start: Any, end: Any, data_interval_start: Any = None) -> str:
    """Why a conf range given to an Airflow backfill is refused, and what to do instead."""
    own = ""
    try:
        if data_interval_start is not None:
            own = f" (this run's own ds is {parse_ds(data_interval_start).isoformat()})"
    except InvalidRange:
        pass
    return (f"start_ds/end_ds ({start or end}..{end or start}) were given to an Airflow backfill: a backfill "
            f"computes each run's own data interval{own}, and one range applied to every run would compute "
            "it once per run. Create the backfill again without a range in its conf (UI Backfill: leave "
            "'Override existing params' unticked; CLI/API: no --dag-run-conf / dag_run_conf), or trigger "
            "one manual run with start_ds and end_ds")


def resolve_range(
    params: Mapping[str, Any] | None = None,
    data_interval_start: Any = None,
    logical_date: Any = None,
    triggering_asset_events: Mapping[Any, Iterable[Any]] | None = None,
    dag_run: Any = None,
) -> tuple[str, str]:
    """``(start_ds, end_ds)`` of a run, both inclusive. A range in the params of an Airflow backfill
    run (``dag_run.run_type == "backfill"``) is refused: each backfill run covers its own interval.

    Called from a template, a value the run's context lacks (a manual run without a logical date
    has no ``data_interval_start``) arrives as Jinja's undefined: it counts as missing."""
    data_interval_start, logical_date = _defined(data_interval_start), _defined(logical_date)
    triggering_asset_events, dag_run = _defined(triggering_asset_events), _defined(dag_run)
    params = _defined(params) or {}
    start, end = params.get("start_ds"), params.get("end_ds")
    if start or end:
        if run_type(dag_run) == BACKFILL_RUN_TYPE:
            raise InvalidRange(backfill_conf_refusal(start, end, data_interval_start or logical_date))
        return check_range(start or end, end or start)
    from_events = _events_range(triggering_asset_events)
    if from_events:
        return from_events
    moment = data_interval_start or logical_date
    if moment is not None:
        ds = parse_ds(moment, "data_interval_start").isoformat()
        return ds, ds
    raise InvalidRange(
        "this run has no start_ds/end_ds params, no asset event with a partition range and no logical date: "
        "trigger it with start_ds and end_ds"
    )


def range_from_context(context: Mapping[str, Any]) -> tuple[str, str]:
    """:func:`resolve_range` from an Airflow task context (also usable as a Jinja macro)."""
    return resolve_range(
        context.get("params"),
        context.get("data_interval_start"),
        context.get("logical_date"),
        context.get("triggering_asset_events"),
        context.get("dag_run"),
    )


def task_range(start: Any, end: Any, context: Mapping[str, Any]) -> tuple[str, str]:
    """A task's ``(start_ds, end_ds)``: the dates it was given (rendered by then, when they were
    templates), each one left ``None`` taken from the run's range (:func:`range_from_context`).

    The generated DAGs give their tasks no dates at all: the run's range is resolved here, in
    Python, when the task runs, rather than by a Jinja template on every task. A template field
    that is set costs the dag-processor a config lookup and a copy per task at each serialization
    (40 % of serializing a partition sensor), and its text was the same on every task anyway."""
    if start is None or end is None:
        run_start, run_end = range_from_context(context)
        start = run_start if start is None else start
        end = run_end if end is None else end
    return start, end


def describe_range(start: str, end: str) -> str:
    """``2024-04-20`` or ``2024-04-20..2024-04-21 (2 partitions)``."""
    if start == end:
        return start
    return f"{start}..{end} ({len(ds_range(start, end))} partitions)"
