"""Join over an offline stitched GroupBy and an online entity GroupBy, with extra args and env."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import account_state, session_legacy_totals
from sources import shared_sources

v1 = Join(
    left=shared_sources.account_snapshot_batch,
    right_parts=[
        JoinPart(group_by=session_legacy_totals.v1),
        JoinPart(group_by=account_state.v1),
    ],
    additional_args={"priority": "low"},
    additional_env={"GROWTH_FEATURE_FLAG": "on"},
)
