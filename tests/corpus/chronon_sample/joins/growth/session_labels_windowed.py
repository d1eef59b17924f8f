"""Label join whose label is a 7-day windowed aggregation (offsets must equal the window)."""
from ai.chronon.api import ttypes
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.join import Join, JoinPart, LabelPart
from ai.chronon.query import Query, select

from group_bys.growth import session_activity, session_totals_stitched
from sources import shared_sources

support_contacts = ttypes.Source(entities=ttypes.EntitySource(
    snapshotTable="growth_raw.support_contacts",
    query=Query(
        start_partition="2021-03-01",
        selects=select(account_id="account_id", contacts="contact_count"),
        time_column="ts",
    ),
))

contact_labels = GroupBy(
    name="session_contact_labels",
    sources=support_contacts,
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="contacts", operation=Operation.SUM, windows=[Window(7, TimeUnit.DAYS)]),
    ],
    online=False,
)

v1 = Join(
    left=shared_sources.session_events,
    output_namespace="growth_stage",
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=session_totals_stitched.v1),
    ],
    label_part=LabelPart(
        [JoinPart(group_by=contact_labels)],
        left_start_offset=7,
        left_end_offset=7,
        label_offline_schedule="@weekly",
    ),
    additional_args={"label_note": "7d contacts"},
    additional_env={"LABEL_MODE": "refresh"},
    online=False,
)
