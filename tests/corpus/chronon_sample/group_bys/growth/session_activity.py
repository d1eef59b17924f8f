"""Session time per account: 7d and lifetime sums plus percentiles. Online, own output namespace, tags."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.session_events,
    keys=["account_id"],
    aggregations=[
        Aggregation(
            input_column="session_seconds",
            operation=Operation.SUM,
            windows=[Window(length=7, timeUnit=TimeUnit.DAYS)],
            tags={"DETAILED_TYPE": "CONTINUOUS"},
        ),
        Aggregation(
            input_column="session_seconds",
            operation=Operation.SUM,
        ),
        Aggregation(
            input_column="session_seconds",
            operation=Operation.APPROX_PERCENTILE([0.9, 0.5], k=128),
        ),
    ],
    online=True,
    output_namespace="growth_serving",
    tags={"REVIEW_BY": "2026-Q1"},
)
