"""``check_range``: the first task of every generated DAG that computes a partition range.

It resolves the run's ``start_ds``/``end_ds`` exactly as every other task of the run will
(:func:`chronon_airflow.partitions.range_from_context`) and fails, without a retry, when the range
cannot be right: a date that is not ``YYYY-MM-DD``, ``start_ds`` after ``end_ds``, more partitions
than ``[chronon] max_range_days``, or a range given to an Airflow backfill (each backfill run
computes its own interval). Every other root task waits for it, so a bad range reaches neither a
model backend nor Spark. XCom ``return_value``: ``{"start_ds", "end_ds", "partitions"}``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from chronon_airflow.exceptions import InvalidRange
from chronon_airflow.partitions import describe_range, ds_range, range_from_context


class ChrononRangeCheckOperator(BaseOperator):
    template_fields: Sequence[str] = ()
    ui_color = "#eeeeee"

    def _set_task_args(self) -> None:
        """Nothing: every range check of a team is the same task (see render.prototypes)."""

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            start, end = range_from_context(context)
        except InvalidRange as e:
            raise AirflowFailException(f"refused partition range: {e}") from None
        days = len(ds_range(start, end))
        self.log.info("this run computes ds %s", describe_range(start, end))
        return {"start_ds": start, "end_ds": end, "partitions": days}
