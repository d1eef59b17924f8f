"""Per-user spend and transaction counts."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources.risk import transactions

windows = [Window(1, TimeUnit.DAYS), Window(7, TimeUnit.DAYS), Window(30, TimeUnit.DAYS)]

v1 = GroupBy(
    sources=[transactions],
    keys=["user_id"],
    aggregations=[
        # A 6-hour window too, so the local engine's hour windows are exercised.
        Aggregation(input_column="txn_id", operation=Operation.COUNT, windows=[Window(6, TimeUnit.HOURS)] + windows),
        Aggregation(input_column="amount_cents", operation=Operation.SUM, windows=windows),
        Aggregation(input_column="amount_cents", operation=Operation.MAX, windows=[Window(7, TimeUnit.DAYS)]),
    ],
    online=True,
)
