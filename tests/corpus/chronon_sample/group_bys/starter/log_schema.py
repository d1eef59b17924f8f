"""Offline GroupBy with a backfill start date over the serving log: latest schema per hash."""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select

serving_log = Source(
    events=EventSource(
        table="default.serving_log_events",
        query=Query(
            selects=select(
                schema_hash="decode(unbase64(key_b64), 'utf-8')",
                schema_body="decode(unbase64(value_b64), 'utf-8')",
            ),
            wheres=["event_name = 'SCHEMA_PUBLISH'"],
            time_column="ts_ms",
        ),
    )
)

v1 = GroupBy(
    keys=["schema_hash"],
    sources=serving_log,
    aggregations=[Aggregation(input_column="schema_body", operation=Operation.LAST)],
    online=False,
    backfill_start_date="2023-04-09",
)
