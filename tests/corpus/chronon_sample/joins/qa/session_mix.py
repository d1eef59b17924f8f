"""Offline join of an online GroupBy and an offline GroupBy with a backfill start date."""
from ai.chronon.api import ttypes
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.qa import session_sum, venue_counts

venue_visits = ttypes.Source(events=ttypes.EventSource(
    table="qa_raw.venue_visits",
    query=Query(
        selects=select("account_id", "venue_id", "region_cell"),
        start_partition="2022-01-01",
        time_column="ts",
    ),
))

v1 = Join(
    left=venue_visits,
    right_parts=[
        JoinPart(group_by=session_sum.v1),
        JoinPart(group_by=venue_counts.with_backfill),
    ],
)
