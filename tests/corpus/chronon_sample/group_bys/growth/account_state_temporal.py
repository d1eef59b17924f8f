"""Plan tier with TEMPORAL accuracy (point-in-time correct from the mutation log).

v0 is offline with no backfill start date: it has no upload or backfill job of its own and only
runs as part of the joins that use it.
v1 is the same aggregation online.
"""
from ai.chronon.group_by import Accuracy, Aggregation, GroupBy, Operation

from sources import shared_sources

v0 = GroupBy(
    sources=shared_sources.account_entities,
    keys=["account_id"],
    aggregations=[Aggregation(input_column="plan_tier", operation=Operation.LAST)],
    accuracy=Accuracy.TEMPORAL,
)

v1 = GroupBy(
    sources=shared_sources.account_entities,
    keys=["account_id"],
    aggregations=[Aggregation(input_column="plan_tier", operation=Operation.LAST)],
    accuracy=Accuracy.TEMPORAL,
    online=True,
)
