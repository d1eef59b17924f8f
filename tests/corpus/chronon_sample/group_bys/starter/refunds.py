"""Refund stats per user. The topic string carries serde/connection hints after slashes."""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select

source = Source(
    events=EventSource(
        table="shop.refunds",
        topic="events.refunds/fields=ts,refund_id,user_id,amount/host=kafka/port=9092",
        query=Query(
            selects=select("user_id", "amount"),
            time_column="ts",
        ),
    ))

windows = [Window(length=d, timeUnit=TimeUnit.DAYS) for d in [3, 14, 30]]

v1 = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        Aggregation(input_column="amount", operation=Operation.SUM, windows=windows),
        Aggregation(input_column="amount", operation=Operation.COUNT, windows=windows),
        Aggregation(input_column="amount", operation=Operation.AVERAGE, windows=windows),
        Aggregation(input_column="amount", operation=Operation.LAST_K(2)),
    ],
)
