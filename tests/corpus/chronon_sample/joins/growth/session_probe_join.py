"""The smallest join: one online GroupBy, events left, default schedule."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import session_probe
from sources import shared_sources

v1 = Join(
    left=shared_sources.session_events,
    right_parts=[JoinPart(group_by=session_probe.v1)],
)
