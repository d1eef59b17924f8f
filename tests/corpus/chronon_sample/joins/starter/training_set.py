"""Checkout training sets: v1 offline with three GroupBys, v2 online with the two event ones."""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.starter.members import v1 as members
from group_bys.starter.purchases import v1 as purchases
from group_bys.starter.refunds import v1 as refunds

# One row per checkout: the keys and timestamps features are computed as of.
checkouts = Source(
    events=EventSource(
        table="shop.checkouts",
        query=Query(
            selects=select("user_id"),
            time_column="ts",
        ),
    ))

v1 = Join(
    left=checkouts,
    right_parts=[JoinPart(group_by=gb) for gb in [purchases, refunds, members]],
)

v2 = Join(
    left=checkouts,
    right_parts=[JoinPart(group_by=gb) for gb in [purchases, refunds]],
    online=True,
)
