"""A GroupBy with a deprecation date."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=[
        shared_sources.sessions_before_cutover,
        shared_sources.sessions_after_cutover,
    ],
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.MAX),
        Aggregation(input_column="session_seconds", operation=Operation.COUNT, windows=[Window(7, TimeUnit.DAYS)]),
    ],
    migration_note="replaced by session_totals_stitched",
    online=True,
    deprecation_date="2023-01-01",
)
