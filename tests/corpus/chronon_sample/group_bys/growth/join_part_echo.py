"""A GroupBy that reads one join part's intermediate table of the growth engagement join.

join_part_output_table_name alone fails in chronon-ai 0.0.115 (TypeError: the imported join has no
metaData.name yet). get_join_output_table_name sets the join's name first, so call it before.
"""
from ai.chronon.api import ttypes
from ai.chronon.group_by import Accuracy, Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select
from ai.chronon.utils import get_join_output_table_name, join_part_output_table_name

from joins.growth import engagement

get_join_output_table_name(engagement.v1, full_name=True)  # names the join
part_table = join_part_output_table_name(engagement.v1, engagement.v1.joinParts[0], True)

v1 = GroupBy(
    sources=ttypes.Source(events=ttypes.EventSource(
        table=part_table,
        query=Query(
            selects=select(
                region_cell="region_cell",
                venue_id="venue_id",
                impressions="growth_venue_engagement_v1_impressions_1d_sum",
            ),
            start_partition="2023-06-01",
            time_column="ts",
        ),
    )),
    keys=["region_cell", "venue_id"],
    aggregations=[Aggregation("impressions", operation=Operation.LAST)],
    production=False,
    backfill_start_date="2023-06-01",
    table_properties={"description": "reads a join part table"},
    accuracy=Accuracy.SNAPSHOT,
    output_namespace="growth_stage",
)
