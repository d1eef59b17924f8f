"""Sources shared by the growth and qa teams.

Every construct here exists to give the compiled `metaData.dependencies` a particular shape:
plain `ns.table/ds={{ ds }}`, a sub-partitioned mutation table, start/end partitions,
a `dt` partition column, a staging query output, a staging query view.
"""
from ai.chronon.api import ttypes
from ai.chronon.query import Query, select
from ai.chronon.staging_query import StagingQueryEventSource
from ai.chronon.utils import get_staging_query_output_table_name

from staging_queries.growth import venue_daily
from staging_queries.growth.session_rollup_view import v1 as session_rollup_view


def events_from(table):
    """An event source over any table that carries account_id, session_seconds and ts."""
    return ttypes.Source(events=ttypes.EventSource(
        table=table,
        query=Query(
            selects=select(
                account_id="account_id",
                session_seconds="session_seconds",
            ),
            start_partition="2021-04-09",
            time_column="ts",
        ),
    ))


# App sessions, batch only.
session_events = ttypes.Source(events=ttypes.EventSource(
    table="growth_raw.app_sessions",
    query=Query(
        selects=select(
            account_id="account_id",
            session_seconds="duration_ms / 1000",
        ),
        start_partition="2021-04-09",
        time_column="ts",
    ),
))

# The same sessions with their Kafka topic, so GroupBys and parent joins over it can stream.
session_events_streaming = ttypes.Source(events=ttypes.EventSource(
    table="growth_raw.app_sessions",
    topic="growth.app_sessions",
    query=Query(
        selects=select(
            account_id="account_id",
            session_seconds="duration_ms / 1000",
        ),
        start_partition="2021-04-09",
        time_column="ts",
    ),
))

# Accounts: daily snapshot plus an hourly-landed mutation log (the /hr=00:00 sub-partition is what
# the sensor must wait for) and the mutation topic.
account_entities = ttypes.Source(entities=ttypes.EntitySource(
    snapshotTable="growth_raw.account_snapshot",
    mutationTable="growth_raw.account_mutations/hr=00:00",
    mutationTopic="growth.account_mutations",
    query=Query(
        start_partition="2021-03-01",
        selects=select(
            account_id="account_id",
            plan_tier="plan_tier",
        ),
        time_column="ts",
    ),
))

# The snapshot alone, no mutations: batch only.
account_snapshot_batch = ttypes.Source(entities=ttypes.EntitySource(
    snapshotTable="growth_raw.account_snapshot",
    query=Query(
        start_partition="2021-03-01",
        selects=select(
            account_id="account_id",
            plan_tier="plan_tier",
        ),
        time_column="ts",
    ),
))

# Entities read from the venue_daily staging query output.
venue_entities = ttypes.Source(entities=ttypes.EntitySource(
    snapshotTable=f"growth_stage.{get_staging_query_output_table_name(venue_daily.v1)}",
    query=Query(
        start_partition="2021-03-01",
        selects=select(**{
            "venue_id": "venue_id",
            "region_cell": "region_cell",
            "impressions_1d": "impressions_1d",
            "views_1d": "views_1d",
        }),
    ),
))

# Sessions before the 2021-04-09 logging migration: the source ends, so its dependency has an end.
sessions_before_cutover = ttypes.Source(events=ttypes.EventSource(
    table="growth_raw.app_sessions",
    query=Query(
        start_partition="2021-03-01",
        end_partition="2021-04-09",
        selects=select(**{
            "account_id": "legacy_account_id",
            "session_seconds": "legacy_duration_s",
        }),
        time_column="UNIX_TIMESTAMP(ts) * 1000",
    ),
))

# Sessions after the migration, from the new table.
sessions_after_cutover = ttypes.Source(events=ttypes.EventSource(
    table="growth_raw.app_sessions_v2",
    query=Query(
        start_partition="2021-03-01",
        selects=select(**{
            "account_id": "account_id",
            "session_seconds": "duration_ms / 1000",
        }),
        time_column="event_time_ms",
    ),
))

# Events read from the session_rollup_view staging query view (batch only, no topic).
session_rollup_events = StagingQueryEventSource(
    staging_query=session_rollup_view,
    query=Query(
        selects=select("account_id", "session_seconds", "screen_loads"),
        time_column="ts",
    ),
    is_cumulative=False,
)

# Orders land in a table partitioned by `dt`, not `ds`: dependencies read commerce_raw.orders/dt={{ ds }}.
orders_by_dt = ttypes.Source(events=ttypes.EventSource(
    table="commerce_raw.orders",
    query=Query(
        selects=select(
            user_id="buyer_id",
            order_id="order_id",
            order_total="total_cents / 100.0",
        ),
        start_partition="2022-06-01",
        time_column="order_ts",
        partition_column="dt",
    ),
))
