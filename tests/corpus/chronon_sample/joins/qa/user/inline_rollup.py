"""A GroupBy defined inline in a join file, named without a version suffix."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.join import Join, JoinPart

from sources import shared_sources

inline_rollup = GroupBy(
    name="qa.user_inline_rollup",
    sources=shared_sources.session_events,
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.MAX),
    ],
    online=True,
)

v1 = Join(
    left=shared_sources.session_events,
    right_parts=[JoinPart(group_by=inline_rollup)],
)
