"""Online join with a consistency check and 25% request logging (log flattening)."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import account_state, session_activity, session_totals_stitched
from sources import shared_sources

v1 = Join(
    left=shared_sources.session_events,
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=account_state.v1),
        JoinPart(group_by=session_totals_stitched.v1),
    ],
    additional_args=["--step-days 14"],
    additional_env={"GROWTH_FEATURE_FLAG": "on"},
    online=True,
    check_consistency=True,
    sample_percent=25.0,
)
