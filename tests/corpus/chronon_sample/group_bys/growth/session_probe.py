"""Minimal online GroupBy used by the dependency-shape join."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.session_events,
    keys=["account_id"],
    aggregations=[Aggregation(input_column="session_seconds", operation=Operation.SUM)],
    online=True,
)
