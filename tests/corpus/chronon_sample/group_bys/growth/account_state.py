"""Latest plan tier per account, overall and within 7 days, from the account snapshot + mutations."""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window

from sources import shared_sources

v1 = GroupBy(
    sources=shared_sources.account_entities,
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="plan_tier", operation=Operation.LAST),
        Aggregation(input_column="plan_tier", operation=Operation.LAST, windows=[Window(7, TimeUnit.DAYS)]),
    ],
    online=True,
)
