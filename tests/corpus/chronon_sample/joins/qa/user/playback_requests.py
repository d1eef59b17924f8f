"""Nested join: left and join part both read tables with no namespace."""
from ai.chronon.api import ttypes
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.qa.user.playback_counts import v1 as playback_counts

catalog_requests = ttypes.Source(
    events=ttypes.EventSource(
        table="catalog_requests",
        query=Query(
            selects=select(viewer="requester_id"),
            wheres=["requester_kind = 'viewer'"],
            start_partition="2023-03-01",
            time_column="UNIX_TIMESTAMP(requested_at) * 1000",
        ),
    )
)

v1 = Join(
    left=catalog_requests,
    right_parts=[JoinPart(group_by=playback_counts)],
    online=True,
)
