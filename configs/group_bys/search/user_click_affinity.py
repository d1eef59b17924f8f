"""Chained GroupBy over the plain join search_clicks.v1: per user, the click popularity of the items they found."""
from ai.chronon.api.ttypes import JoinSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select

from joins.search import search_clicks

v1 = GroupBy(
    sources=[Source(joinSource=JoinSource(
        join=search_clicks.v1,
        query=Query(
            selects=select("user_id", "item_id", item_clicks_7d="search_item_clicks_v1_click_id_count_7d"),
            wheres=["search_item_clicks_v1_click_id_count_7d IS NOT NULL"],
            time_column="ts",
        ),
    ))],
    keys=["user_id"],
    aggregations=[
        Aggregation(input_column="item_clicks_7d", operation=Operation.SUM,
                    windows=[Window(1, TimeUnit.DAYS), Window(7, TimeUnit.DAYS)]),
        Aggregation(input_column="item_clicks_7d", operation=Operation.COUNT,
                    windows=[Window(1, TimeUnit.DAYS)]),
        Aggregation(input_column="item_id", operation=Operation.LAST),
    ],
    online=True,
    backfill_start_date="2024-03-15",
)
