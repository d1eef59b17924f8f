"""Session totals stitched from the pre- and post-migration tables. Extra kwargs land in customJson."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=[
        shared_sources.sessions_before_cutover,
        shared_sources.sessions_after_cutover,
    ],
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.SUM),
        Aggregation(input_column="session_seconds", operation=Operation.APPROX_PERCENTILE([0.5])),
        Aggregation(input_column="session_seconds", operation=Operation.SUM, windows=[Window(7, TimeUnit.DAYS)]),
    ],
    migration_note="stitched at 2021-04-09",
    online=True,
)
