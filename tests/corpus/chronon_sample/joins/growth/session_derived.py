"""Join with derivations over two join parts (no wildcard: only the derived columns survive)."""
from ai.chronon.join import Derivation, Join, JoinPart

from group_bys.growth import account_state, session_activity
from sources import shared_sources

v1 = Join(
    left=shared_sources.session_events,
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=account_state.v1),
    ],
    derivations=[
        Derivation(
            name="avg_daily_seconds_7d",
            expression="growth_session_activity_v1_session_seconds_sum_7d / 7",
        ),
        Derivation(name="account_id", expression="account_id"),
        Derivation(name="ds", expression="ds"),
    ],
)
