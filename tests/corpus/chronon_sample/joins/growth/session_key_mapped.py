"""The left calls the account `member_id`; key_mapping maps it onto the GroupBys' `account_id`."""
from ai.chronon.api import ttypes
from ai.chronon.join import Derivation, Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.growth import account_state, session_activity

member_visits = ttypes.Source(events=ttypes.EventSource(
    table="growth_raw.member_visits",
    query=Query(
        selects=select(
            member_id="member_id",
            visit_seconds="visit_ms / 1000",
        ),
        start_partition="2021-04-09",
        time_column="ts",
    ),
))

v1 = Join(
    left=member_visits,
    right_parts=[
        JoinPart(group_by=session_activity.v1, key_mapping={"member_id": "account_id"}),
        JoinPart(group_by=account_state.v1, key_mapping={"member_id": "account_id"}),
    ],
    derivations=[
        Derivation(
            name="visit_share_7d",
            expression="visit_seconds / greatest(growth_session_activity_v1_session_seconds_sum_7d, 1)",
        ),
        Derivation(name="seconds_7d", expression="growth_session_activity_v1_session_seconds_sum_7d"),
        Derivation(name="seconds_total", expression="growth_session_activity_v1_session_seconds_sum"),
        Derivation(name="seconds_pct", expression="growth_session_activity_v1_session_seconds_approx_percentile"),
        Derivation(name="tier", expression="growth_account_state_v1_plan_tier_last"),
        Derivation(name="tier_7d", expression="growth_account_state_v1_plan_tier_last_7d"),
    ],
)
