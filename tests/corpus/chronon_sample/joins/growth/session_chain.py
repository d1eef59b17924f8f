"""Chaining inside one file: a streaming parent join, a GroupBy over its output, and a join of that GroupBy."""
from ai.chronon.api import ttypes
from ai.chronon.group_by import Accuracy, Aggregation, GroupBy, Operation
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.growth import account_state, session_activity
from sources import shared_sources

parent = Join(
    left=shared_sources.session_events_streaming,
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=account_state.v1),
    ],
    online=True,
    check_consistency=True,
    historical_backfill=False,
)

# Inline GroupBy named without a version suffix.
tier_rollup = GroupBy(
    name="growth.session_chain_rollup",
    sources=ttypes.Source(joinSource=ttypes.JoinSource(
        join=parent,
        query=Query(
            selects=select(
                tier="growth_account_state_v1_plan_tier_last",
                seconds_7d="growth_session_activity_v1_session_seconds_sum_7d",
            ),
            start_partition="2023-04-15",
            time_column="ts",
        ))),
    keys=["tier"],
    aggregations=[
        Aggregation(input_column="seconds_7d", operation=Operation.LAST),
    ],
    accuracy=Accuracy.TEMPORAL,
    online=True,
    production=True,
    table_properties={
        "owner_note": """{"contact": "growth-ml"}""",
        "description": "latest 7d session seconds per plan tier",
    },
    output_namespace="growth_serving",
)

v1 = Join(
    left=shared_sources.account_snapshot_batch,
    right_parts=[
        JoinPart(group_by=tier_rollup, key_mapping={"plan_tier": "tier"}),
    ],
    additional_args={"priority": "high"},
    additional_env={"GROWTH_FEATURE_FLAG": "on"},
    online=True,
    check_consistency=True,
)
