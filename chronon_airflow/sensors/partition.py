"""ChrononPartitionSensor: wait until every partition a run depends on exists, deferrable by default.

One Chronon dependency (``ns.table/dt={{ macros.ds_add(ds, -2) }}/hr=00:00`` with optional
``start``/``end``), parsed by the planner, arrives here as fields: ``table``, ``partition_column``,
``lag_days``, ``subpartitions``, ``window_start``/``window_end``. The partitions waited for are
``ds - lag_days`` for every ds of the run's range, minus those outside the dependency's window; when
none is left the task succeeds at once, saying why.

Deferrable (the default): one check in the worker (everything already there ends the task at
once), then the slot is released to ChrononPartitionTrigger in the triggerer until the partitions
land, the timeout passes or the catalog keeps failing. ``deferrable=False``: plain poke mode (the
sensor holds its worker slot), with the same bound on consecutive catalog errors. Reschedule mode
is not used by default (apache/airflow#71172 fails waiting sensors in reschedule mode).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from chronon_airflow import warehouse
from chronon_airflow.catalogs import catalog_name, get_catalog, missing_partitions
from chronon_airflow.lineage import ChrononLineageMixin
from chronon_airflow.partitions import PartitionRangeError, check_range, ds_add, ds_range, parse_ds, task_range
from chronon_airflow.triggers import partition as trig


def _span(partitions: list[str]) -> str:
    return partitions[0] if len(partitions) == 1 else f"{partitions[0]}..{partitions[-1]}"


def wanted_partitions(start_ds: str | None, end_ds: str | None, lag_days: int = 0, window_start: str | None = None,
                      window_end: str | None = None) -> tuple[list[str], str]:
    """The partitions to wait for and a sentence about what was left out ("" when nothing was).

    ``ds - lag_days`` for every ds in ``start_ds..end_ds`` (a negative lag is a later partition),
    without those before ``window_start`` or after ``window_end`` (both inclusive, both optional).
    """
    start, end = check_range(start_ds, end_ds)
    shifted = [ds_add(ds, -lag_days) for ds in ds_range(start, end)] if lag_days else ds_range(start, end)
    before = [p for p in shifted if window_start and p < window_start]
    after = [p for p in shifted if window_end and p > window_end]
    wanted = [p for p in shifted if not (window_start and p < window_start) and not (window_end and p > window_end)]
    notes = []
    if after:
        notes.append(f"{_span(after)} {'is' if len(after) == 1 else 'are'} past the dependency's end {window_end}")
    if before:
        notes.append(f"{_span(before)} {'is' if len(before) == 1 else 'are'} before the dependency's start "
                     f"{window_start}")
    return wanted, "; ".join(notes)


class ChrononPartitionSensor(ChrononLineageMixin, BaseSensorOperator):
    """Wait for ``table``'s partitions ``<partition_column>=<ds - lag_days>[/<k>=<v>...]`` for every
    ds of ``start_ds..end_ds`` inside ``[window_start, window_end]``.

    ``catalog`` names the partition catalog (default ``[chronon] catalog``). ``timeout`` bounds the
    whole wait; ``poke_interval`` is the time between checks (in the triggerer when deferred).
    """

    # Only the dates are templates (hand-wired DAGs may pass "{{ ds }}"; the generated DAGs pass
    # none: the run's range is resolved when the task runs); the table, column, sub-partitions and
    # window come from the config and are never rendered.
    template_fields: Sequence[str] = ("start_ds", "end_ds")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        table: str,
        start_ds: str | None = None,
        end_ds: str | None = None,
        lag_days: int = 0,
        partition_column: str = "ds",
        catalog: str | None = None,
        subpartitions: Mapping[str, str] | None = None,
        window_start: str | None = None,
        window_end: str | None = None,
        deferrable: bool = True,
        max_consecutive_errors: int = 5,
        poke_interval: float = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self._set_task_args(table=table, partition_column=partition_column, subpartitions=subpartitions,
                            lag_days=lag_days, window_start=window_start, window_end=window_end)
        self.start_ds = start_ds
        self.end_ds = end_ds
        self.catalog = catalog
        self.deferrable = deferrable
        self.max_consecutive_errors = max_consecutive_errors
        self._errors = 0

    def _set_task_args(self, *, table: str, partition_column: str = "ds",
                       subpartitions: Mapping[str, str] | None = None, lag_days: int = 0,
                       window_start: str | None = None, window_end: str | None = None) -> None:
        """What makes this wait this wait: the partition it looks for. ``__init__`` calls it, and so
        does the render layer when it builds the task as a copy of another
        (:mod:`chronon_airflow.render.prototypes`). Config values are checked here, so a bad one
        fails the DAG's build, not a run hours later."""
        warehouse.check_table(table)
        warehouse.check_column(partition_column)
        subs = warehouse.check_subpartitions(subpartitions)
        if partition_column in (k for k, _ in subs):
            raise ValueError(f"{table}: sub-partition key {partition_column!r} repeats the partition column")
        if isinstance(lag_days, bool) or not isinstance(lag_days, int):
            raise ValueError(f"{table}: lag_days = {lag_days!r} is not an integer")
        window = [parse_ds(w, name).isoformat() if w is not None else None
                  for w, name in ((window_start, "window_start"), (window_end, "window_end"))]
        if window[0] and window[1] and window[0] > window[1]:
            raise ValueError(f"{table}: window_start {window[0]} is after window_end {window[1]}")
        self.table = table
        self.lag_days = lag_days
        self.partition_column = partition_column
        self.subpartitions = dict(subs)
        self.window_start, self.window_end = window

    @property
    def what(self) -> str:
        subs = (f"{k}={v}" for k, v in self.subpartitions.items())
        return "/".join([self.table, f"{self.partition_column}=*", *subs])

    def partitions(self) -> list[str]:
        """The partitions (``partition_column`` values) this run waits for."""
        return wanted_partitions(self.start_ds, self.end_ds, self.lag_days, self.window_start, self.window_end)[0]

    def _wanted(self, log: bool = True) -> list[str]:
        try:
            wanted, note = wanted_partitions(self.start_ds, self.end_ds, self.lag_days, self.window_start,
                                             self.window_end)
        except PartitionRangeError as e:  # a bad run range does not get better on a retry
            raise AirflowFailException(f"{self.what}: {e}") from e
        if not log:
            return wanted
        if not wanted:
            self.log.info("%s: %s: nothing to wait for", self.what, note)
        elif note:
            self.log.info("%s: %s: not waited for", self.what, note)
        return wanted

    def _missing(self, wanted: list[str]) -> list[str]:
        """One catalog check. A catalog that cannot be built or rejects the names fails the task
        (AirflowFailException); other errors propagate to the caller."""
        try:
            catalog = get_catalog(self.catalog)
        except Exception as e:
            raise AirflowFailException(f"partition catalog {catalog_name(self.catalog)!r}: {e}") from e
        try:
            missing = missing_partitions(catalog, self.table, wanted, self.partition_column, self.subpartitions)
        except (ValueError, TypeError) as e:
            raise AirflowFailException(f"asking {type(catalog).__name__} for {self.what}: {e}") from e
        if missing:
            self.log.info("%s: %s", self.what, trig.describe_missing(missing, len(wanted)))
        else:
            self.log.info("%s: all %d partitions %s present", self.what, len(wanted), _span(wanted))
        return missing

    def poke(self, context: Any) -> bool:
        wanted = self._wanted(log=False)  # execute() said what is left out, once
        if not wanted:
            return True
        try:
            missing = self._missing(wanted)
        except AirflowFailException:
            raise
        except Exception as e:
            self._errors += 1
            if self._errors >= self.max_consecutive_errors:
                raise AirflowException(f"gave up on {self.what} after {self._errors} consecutive catalog errors; "
                                       f"last: {type(e).__name__}: {e}") from e
            self.log.warning("check %d/%d of %s failed: %s: %s", self._errors, self.max_consecutive_errors,
                             self.what, type(e).__name__, e)
            return False
        self._errors = 0
        return not missing

    def execute(self, context: Any) -> Any:
        try:
            self.start_ds, self.end_ds = task_range(self.start_ds, self.end_ds, context)
        except PartitionRangeError as e:  # a bad run range does not get better on a retry
            raise AirflowFailException(f"{self.what}: {e}") from e
        wanted = self._wanted()
        if not wanted:
            return None
        if not self.deferrable:
            return super().execute(context)
        waiting = wanted
        try:
            waiting = self._missing(wanted)
            if not waiting:
                return None
        except AirflowFailException:
            raise
        except Exception as e:
            # Catalog trouble right now is no reason to fail: the trigger retries with its own bound.
            self.log.warning("first check of %s failed, deferring anyway: %s: %s", self.what, type(e).__name__, e)
        self.defer(
            # Only what is missing: a partition, once there, stays there.
            trigger=trig.ChrononPartitionTrigger(
                table=self.table, partitions=waiting, column=self.partition_column,
                subpartitions=self.subpartitions, catalog=catalog_name(self.catalog),
                poll_interval=self.poke_interval, deadline=time.time() + self.timeout,
                max_consecutive_errors=self.max_consecutive_errors),
            method_name="execute_complete",
            # A little slack over the trigger's own deadline, so its clearer timeout event wins.
            timeout=timedelta(seconds=self.timeout + max(60.0, self.poke_interval)),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if not event:
            raise AirflowException(f"trigger for {self.what} returned no event")
        status, message = event.get("status"), event.get("message", "")
        if status == trig.EVENT_SUCCESS:
            self.log.info("%s", message)
            return None
        if status == trig.EVENT_FAILED:
            raise AirflowFailException(message)
        if status == trig.EVENT_TIMEOUT:
            raise AirflowSensorTimeout(message)
        raise AirflowException(message or f"{self.what}: unexpected trigger event {event}")
