"""Parent join for chaining: its left has a topic, so GroupBys may read it through a JoinSource."""
from ai.chronon.join import Join, JoinPart

from group_bys.qa import session_sum
from sources import shared_sources

parent = Join(
    left=shared_sources.session_events_streaming,
    right_parts=[JoinPart(group_by=session_sum.v1)],
    online=True,
)
