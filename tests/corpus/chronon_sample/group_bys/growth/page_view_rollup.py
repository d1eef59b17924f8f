"""A GroupBy over a staging query view. The view has no partitions of its own, so the GroupBy
waits on the signal-partition table: ns.chronon_signal_partitions/ds={{ ds }}/table_name=ns.view.
"""
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.staging_query import get_staging_query_dependencies

from sources import shared_sources
from staging_queries.growth.session_rollup_view import v1 as rollup_view

windows = [Window(length=d, timeUnit=TimeUnit.DAYS) for d in [7, 28]]

v1 = GroupBy(
    sources=[shared_sources.session_rollup_events],
    keys=["account_id"],
    online=True,
    dependencies=get_staging_query_dependencies(rollup_view),
    aggregations=[
        Aggregation(input_column="session_seconds", operation=Operation.SUM, windows=windows),
        Aggregation(input_column="screen_loads", operation=Operation.AVERAGE, windows=windows),
        Aggregation(input_column="screen_loads", operation=Operation.MAX),
    ],
)
