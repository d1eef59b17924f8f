"""Chained GroupBy: fraud score stats per merchant, read from the txn_fraud join output."""
from ai.chronon.api.ttypes import JoinSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select

from joins.risk import txn_fraud

v1 = GroupBy(
    sources=[Source(joinSource=JoinSource(
        join=txn_fraud.v1,
        query=Query(
            # fraud_score is the un-prefixed output of the fraud_scorer model.
            selects=select("merchant_id", "fraud_score"),
            time_column="ts",
        ),
    ))],
    keys=["merchant_id"],
    aggregations=[
        Aggregation(input_column="fraud_score", operation=Operation.AVERAGE,
                    windows=[Window(1, TimeUnit.DAYS), Window(7, TimeUnit.DAYS)]),
        Aggregation(input_column="fraud_score", operation=Operation.MAX, windows=[Window(7, TimeUnit.DAYS)]),
    ],
    online=True,
    # Chained GroupBys with a backfill start get a manual GroupBy backfill DAG as well.
    backfill_start_date="2024-03-15",
)
