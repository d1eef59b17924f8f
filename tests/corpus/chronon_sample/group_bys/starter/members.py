"""Member attributes straight from the daily snapshot: no aggregations, key = table key."""
from ai.chronon.api.ttypes import EntitySource, Source
from ai.chronon.group_by import GroupBy
from ai.chronon.query import Query, select

source = Source(
    entities=EntitySource(
        snapshotTable="shop.members",
        query=Query(
            selects=select("user_id", "signup_ds", "phone_verified"),
        ),
    ))

v1 = GroupBy(
    sources=[source],
    keys=["user_id"],
    aggregations=None,
    online=True,
)
