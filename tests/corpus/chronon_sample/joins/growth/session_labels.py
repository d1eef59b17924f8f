"""Label join: outcome labels refreshed weekly for left rows 30..10 days before the label date."""
from ai.chronon.api import ttypes
from ai.chronon.group_by import GroupBy
from ai.chronon.join import Join, JoinPart, LabelPart
from ai.chronon.query import Query, select

from group_bys.growth import session_activity, session_totals_stitched
from sources import shared_sources

account_outcomes = ttypes.Source(entities=ttypes.EntitySource(
    snapshotTable="growth_raw.account_outcomes",
    query=Query(
        start_partition="2021-03-01",
        selects=select(account_id="account_id", churned="CAST(churned AS INT)"),
        time_column="ts",
    ),
))

# Defined inline, named without a team prefix.
outcome_labels = GroupBy(
    name="session_outcome_labels",
    sources=account_outcomes,
    keys=["account_id"],
    aggregations=None,
    online=False,
)

v1 = Join(
    left=shared_sources.session_events,
    output_namespace="growth_stage",
    sample_percent=100.0,
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=session_totals_stitched.v1),
    ],
    label_part=LabelPart(
        [JoinPart(group_by=outcome_labels)],
        left_start_offset=30,
        left_end_offset=10,
        label_offline_schedule="@weekly",
    ),
    additional_args={"label_note": "weekly refresh"},
    additional_env={"LABEL_MODE": "refresh"},
    online=False,
)
