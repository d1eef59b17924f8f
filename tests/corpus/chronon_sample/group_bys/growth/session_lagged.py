"""Session sums that wait on the partition two days back (lag=2)."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.session_events,
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.SUM, windows=[Window(30, TimeUnit.DAYS)]),
    ],
    online=True,
    lag=2,
)
