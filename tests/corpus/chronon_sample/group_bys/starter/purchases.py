"""Purchase stats per user over 3/14/30 days, plus the last ten prices. Batch source, online."""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select

source = Source(
    events=EventSource(
        table="shop.purchases",  # daily batch log of purchases
        topic=None,  # no stream: see refunds.py for a streaming source
        query=Query(
            selects=select("user_id", "price"),
            time_column="ts",
        ),
    ))

windows = [Window(length=d, timeUnit=TimeUnit.DAYS) for d in [3, 14, 30]]

v1 = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        Aggregation(input_column="price", operation=Operation.SUM, windows=windows),
        Aggregation(input_column="price", operation=Operation.COUNT, windows=windows),
        Aggregation(input_column="price", operation=Operation.AVERAGE, windows=windows),
        Aggregation(input_column="price", operation=Operation.LAST_K(10)),
    ],
)
