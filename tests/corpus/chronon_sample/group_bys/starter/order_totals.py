"""Order totals per user from the dt-partitioned orders table."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources.shared_sources import orders_by_dt

windows = [Window(length=d, timeUnit=TimeUnit.DAYS) for d in [7, 30]]

v1 = GroupBy(
    sources=[orders_by_dt],
    keys=["user_id"],
    aggregations=[
        Aggregation(input_column="order_total", operation=Operation.SUM, windows=windows),
        Aggregation(input_column="order_id", operation=Operation.COUNT, windows=windows),
    ],
    online=True,
)
