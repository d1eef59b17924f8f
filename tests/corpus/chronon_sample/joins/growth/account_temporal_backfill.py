"""Events left joined with the TEMPORAL entity GroupBy: a point-in-time backfill from mutations."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import account_state_temporal
from sources import shared_sources

v0 = Join(
    left=shared_sources.session_events,
    right_parts=[JoinPart(group_by=account_state_temporal.v0)],
    online=False,
)
