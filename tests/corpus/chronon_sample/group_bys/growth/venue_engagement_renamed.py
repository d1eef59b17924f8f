"""Renaming derivations only (no wildcard): keys and ds pass through under their own names."""
from ai.chronon.group_by import Aggregation, Derivation, GroupBy, Operation

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.venue_entities,
    keys=["region_cell", "venue_id"],
    aggregations=[
        Aggregation(input_column="impressions_1d", operation=Operation.SUM),
        Aggregation(input_column="views_1d", operation=Operation.SUM),
    ],
    online=True,
    table_properties={"description": "venue engagement, renamed columns"},
    derivations=[Derivation(name=col, expression=col) for col in ["ds", "region_cell", "venue_id"]]
    + [Derivation(name="venue_impressions", expression="impressions_1d_sum")],
    output_namespace="growth_stage",
)
