"""Join whose left side is a staging query's output table: enriched clicks with item click stats."""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select
from ai.chronon.utils import get_staging_query_output_table_name

from group_bys.search import item_clicks
from staging_queries.search import click_events_enriched

enriched_clicks = Source(events=EventSource(
    table=get_staging_query_output_table_name(click_events_enriched.v1, full_name=True),
    query=Query(
        selects=select("item_id", "click_id", "category", "dwell_time_ms"),
        time_column="ts",
        start_partition="2024-03-15",
    ),
))

v1 = Join(
    left=enriched_clicks,
    right_parts=[JoinPart(group_by=item_clicks.v1)],
    online=False,
    description="Enriched clicks (from a staging query) with the item's click stats.",
)
