"""Joins that bootstrap from a precomputed table, from their own log, and from an older join."""
from ai.chronon.api import ttypes
from ai.chronon.join import BootstrapPart, Join, JoinPart
from ai.chronon.query import Query, select
from ai.chronon.utils import get_join_output_table_name

from group_bys.growth import account_state, session_activity, session_totals_stitched

# One row per scoring request.
session_requests = ttypes.Source(events=ttypes.EventSource(
    table="growth_raw.session_requests",
    query=Query(
        selects=select("request_id", "account_id"),
        start_partition="2021-04-09",
        time_column="ts",
    ),
))

base_parts = [
    JoinPart(group_by=session_activity.v1),
    JoinPart(group_by=account_state.v1),
]

v1 = Join(
    left=session_requests,
    right_parts=base_parts,
    online=True,
    sample_percent=100.0,
    row_ids=["request_id"],
    bootstrap_from_log=True,
    bootstrap_parts=[
        BootstrapPart(
            "growth_db.session_feature_seed",
            key_columns=["request_id"],
            query=Query(
                start_partition="2022-01-01",
                end_partition="2022-02-01",
                selects=select(seed_score="seed_score", seed_bucket="seed_bucket"),
            ),
        )
    ],
)

# v2 adds a join part and bootstraps everything before 2023 from v1's output table.
v2 = Join(
    left=session_requests,
    right_parts=base_parts + [JoinPart(group_by=session_totals_stitched.v1)],
    online=True,
    sample_percent=100.0,
    row_ids=["request_id"],
    bootstrap_from_log=True,
    bootstrap_parts=[
        BootstrapPart(
            table=get_join_output_table_name(v1, full_name=True),
            query=Query(end_partition="2023-01-01"),
        )
    ],
)
