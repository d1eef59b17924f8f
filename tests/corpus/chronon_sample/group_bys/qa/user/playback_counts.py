"""Nested folder (qa/user/) and a source table with no namespace. Named aggregations."""
from ai.chronon.api import ttypes
from ai.chronon.api.ttypes import Aggregation, Operation, TimeUnit, Window
from ai.chronon.group_by import Aggregations, GroupBy
from ai.chronon.query import Query, select

playback_events = ttypes.Source(
    events=ttypes.EventSource(
        table="playback_events_raw",
        query=Query(
            selects=select(
                viewer="viewer_id",
                starts="if(action = 'start', 1, 0)",
                skips="if(action = 'skip', 1, 0)",
            ),
            start_partition="2023-03-01",
            time_column="UNIX_TIMESTAMP(event_time) * 1000",
        ),
    )
)

month = [Window(length=30, timeUnit=TimeUnit.DAYS)]

v1 = GroupBy(
    keys=["viewer"],
    sources=playback_events,
    aggregations=Aggregations(
        start_count=Aggregation(operation=Operation.SUM, inputColumn="starts", windows=month),
        skip_count=Aggregation(operation=Operation.SUM, inputColumn="skips", windows=month),
    ),
    online=True,
)
