"""Staging query: every item click with the item's category and price of the same day."""
from ai.chronon.api.ttypes import MetaData, StagingQuery

query = """
SELECT
    c.item_id,
    c.click_id,
    c.dwell_time_ms,
    s.category,
    s.price_cents,
    c.ts,
    c.ds
FROM search_data.item_clicks c
JOIN search_data.items_snapshot s
  ON c.item_id = s.item_id AND s.ds = c.ds
WHERE c.ds BETWEEN '{{ start_date }}' AND '{{ end_date }}'
"""

v1 = StagingQuery(
    query=query,
    startPartition="2024-03-15",
    metaData=MetaData(
        outputNamespace="search_features",
        dependencies=[
            "search_data.item_clicks/ds={{ ds }}",
            "search_data.items_snapshot/ds={{ ds }}",
        ],
        tableProperties={"source": "chronon"},
    ),
)
