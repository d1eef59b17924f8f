"""Clicks per ad, set up like a streaming GroupBy.

A real deployment would read a click log table and its Kafka topic. Here the batch side is the
click_log staging query output (a table name with no namespace) and the topic is a placeholder.
TEMPORAL accuracy makes backfills match what streaming would have served.
"""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Accuracy, Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select
from ai.chronon.utils import get_staging_query_output_table_name

from staging_queries.ads.click_log import base

clicks = Source(
    events=EventSource(
        table=get_staging_query_output_table_name(base),
        topic="ads.ad_clicks",
        query=Query(
            selects=select("ad_id", "was_clicked"),
            time_column="ts",
        ),
    ))

three_days = [Window(length=3, timeUnit=TimeUnit.DAYS)]

live = GroupBy(
    sources=[clicks],
    keys=["ad_id"],
    aggregations=[
        Aggregation(input_column="was_clicked", operation=Operation.SUM, windows=three_days),
        Aggregation(input_column="was_clicked", operation=Operation.COUNT, windows=three_days),
        Aggregation(input_column="was_clicked", operation=Operation.AVERAGE, windows=three_days),
    ],
    accuracy=Accuracy.TEMPORAL,
    online=True,
)
