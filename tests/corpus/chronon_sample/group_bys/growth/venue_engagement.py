"""Venue impressions and views from the venue_daily staging query output.

v1 is offline without a backfill start date: no job of its own, it only runs inside joins.
with_backfill has a backfill start date and derivations, so it is materialized on its own.
"""
from ai.chronon.group_by import Aggregation, Derivation, GroupBy, Operation

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.venue_entities,
    keys=["region_cell", "venue_id"],
    aggregations=[
        Aggregation(input_column="impressions_1d", operation=Operation.SUM),
        Aggregation(input_column="views_1d", operation=Operation.SUM),
    ],
    production=False,
    table_properties={
        "owner_note": """{"contact": "growth-ml"}""",
        "description": "venue engagement sums",
    },
    output_namespace="growth_stage",
)

with_backfill = GroupBy(
    sources=shared_sources.venue_entities,
    keys=["region_cell", "venue_id"],
    aggregations=[
        Aggregation(input_column="impressions_1d", operation=Operation.SUM),
        Aggregation(input_column="views_1d", operation=Operation.SUM),
    ],
    production=False,
    output_namespace="growth_stage",
    backfill_start_date="2023-01-01",
    derivations=[
        Derivation(name="view_rate", expression="views_1d_sum / greatest(impressions_1d_sum, 1)"),
        Derivation(name="*", expression="*"),
    ],
)
