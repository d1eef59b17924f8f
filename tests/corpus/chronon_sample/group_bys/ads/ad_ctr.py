"""Click-through GroupBys made by one helper: same aggregations, different keys and accuracy.

All three are offline without a backfill start date, so they have no job of their own.
"""
from ai.chronon.group_by import Accuracy, Aggregation, GroupBy, Operation, TimeUnit, Window

from sources.ads.impressions import click_log_events


def ctr_by(*keys, accuracy):
    three_days = [Window(length=3, timeUnit=TimeUnit.DAYS)]
    return GroupBy(
        sources=[click_log_events(*(list(keys) + ["was_clicked"]))],
        keys=list(keys),
        aggregations=[
            Aggregation(input_column="was_clicked", operation=Operation.SUM, windows=three_days),
            Aggregation(input_column="was_clicked", operation=Operation.COUNT, windows=three_days),
            Aggregation(input_column="was_clicked", operation=Operation.AVERAGE, windows=three_days),
        ],
        accuracy=accuracy,
    )


# Midnight-accurate: pages change slowly.
by_page = ctr_by("ad_id", "page_id", accuracy=Accuracy.SNAPSHOT)
# Point-in-time accurate per visitor.
by_visitor = ctr_by("ad_id", "visitor_id", accuracy=Accuracy.TEMPORAL)
# Coarse: device class and region.
by_region = ctr_by("ad_id", "device_class", "geo_region", accuracy=Accuracy.SNAPSHOT)
