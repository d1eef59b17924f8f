"""Offline, stitched, no backfill start date: no job of its own, it only runs inside joins."""
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
        Aggregation(input_column="session_seconds", operation=Operation.SUM, windows=[Window(7, TimeUnit.DAYS)]),
    ],
)
