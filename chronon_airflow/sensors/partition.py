"""Waits until every partition of a run's range exists in the configured catalog."""
from __future__ import annotations

from typing import Any, Sequence

from airflow.sdk import BaseSensorOperator

from chronon_airflow.catalogs import get_catalog
from chronon_airflow.partitions import check_range, ds_add, ds_range


class ChrononPartitionSensor(BaseSensorOperator):
    """Pokes the partition catalog for ``table`` partitions ``start_ds - lag .. end_ds - lag``.

    Runs in ``reschedule`` mode by default: between pokes the task gives its worker slot back, so a
    dependency that lands hours late holds no worker.
    """

    # Only the dates are templates (the DAG passes our own range expression); the table comes from
    # the config and is never rendered.
    template_fields: Sequence[str] = ("start_ds", "end_ds")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        table: str,
        start_ds: str,
        end_ds: str,
        lag_days: int = 0,
        partition_column: str = "ds",
        catalog: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 300)
        super().__init__(**kwargs)
        self.table = table
        self.start_ds = start_ds
        self.end_ds = end_ds
        self.lag_days = lag_days
        self.partition_column = partition_column
        self.catalog = catalog

    def partitions(self) -> list[str]:
        start, end = check_range(self.start_ds, self.end_ds)
        return [ds_add(ds, -self.lag_days) for ds in ds_range(start, end)]

    def poke(self, context: Any) -> bool:
        wanted = self.partitions()
        missing = get_catalog(self.catalog).missing_partitions(self.table, wanted, self.partition_column)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            self.log.info("%s: %d of %d partitions missing: %s", self.table, len(missing), len(wanted), shown)
            return False
        self.log.info("%s: all %d partitions %s..%s present", self.table, len(wanted), wanted[0], wanted[-1])
        return True
