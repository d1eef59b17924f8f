"""Plain join (no model transforms) over the search event stream: each search with its item's click stats.

Its left source has a topic, so its output table can feed a chained GroupBy through a JoinSource.
"""
from ai.chronon.join import Join, JoinPart

from group_bys.search import item_clicks
from sources.search import search_events

v1 = Join(
    left=search_events,
    right_parts=[JoinPart(group_by=item_clicks.v1)],
    online=True,
    description="Searches with the 1d/7d click stats of the item they landed on.",
)
