"""Venue view counts: v1 offline (no job of its own), with_backfill offline with a backfill start date."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.venue_entities,
    keys=["region_cell", "venue_id"],
    aggregations=[Aggregation(input_column="views_1d", operation=Operation.SUM)],
)

with_backfill = GroupBy(
    sources=shared_sources.venue_entities,
    keys=["region_cell", "venue_id"],
    aggregations=[Aggregation(input_column="impressions_1d", operation=Operation.SUM)],
    backfill_start_date="2023-01-01",
)
