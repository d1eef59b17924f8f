"""User-given dependencies replace the derived ones. The second carries an extra sub-partition."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.session_events,
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.AVERAGE, windows=[Window(14, TimeUnit.DAYS)]),
    ],
    online=True,
    backfill_start_date="2023-03-01",
    dependencies=[
        "growth_raw.app_sessions/ds={{ ds }}",
        "growth_raw.quality_signals/ds={{ ds }}/table_name=growth_raw.session_quality_view",
    ],
)
