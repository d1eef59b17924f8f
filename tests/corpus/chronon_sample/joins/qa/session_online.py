"""Online join with one online GroupBy; no logging, no consistency check."""
from ai.chronon.join import Join, JoinPart

from group_bys.qa import session_sum
from sources import shared_sources

v1 = Join(
    left=shared_sources.session_events,
    right_parts=[JoinPart(group_by=session_sum.v1)],
    online=True,
)
