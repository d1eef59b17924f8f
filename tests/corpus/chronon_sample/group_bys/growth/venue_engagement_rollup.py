"""A GroupBy over another GroupBy's backfill table.

It imports the upstream GroupBy object itself (not its module), as upstream's sample does. The
compiler then names every GroupBy in this module's namespace after this file, so the imported
object is also written as `venue_engagement_rollup.with_backfill`: a second copy under a new name.
"""
from ai.chronon import utils
from ai.chronon.group_by import Aggregation, GroupBy, Operation

from group_bys.growth.venue_engagement import with_backfill
from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.events_from(utils.group_by_output_table_name(with_backfill, True)),
    keys=["region_cell", "venue_id"],
    aggregations=[Aggregation(input_column="impressions_1d_sum", operation=Operation.LAST)],
    production=False,
    backfill_start_date="2022-01-01",
    table_properties={"description": "latest impressions sum per venue"},
    output_namespace="growth_stage",
)
