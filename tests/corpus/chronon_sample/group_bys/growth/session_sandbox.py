"""Explicitly offline and non-production: an experiment nobody schedules."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.session_events,
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.MIN, windows=[Window(7, TimeUnit.DAYS)]),
        Aggregation(input_column="session_seconds", operation=Operation.MIN),
    ],
    online=False,
    production=False,
    output_namespace="growth_stage",
)
