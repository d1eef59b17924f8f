"""Staging query that echoes every date template Chronon substitutes, one row per item and day."""
from ai.chronon.api.ttypes import MetaData, StagingQuery

query = """
SELECT
    item_id,
    category,
    '{{ start_date }}' AS range_start,
    '{{ end_date }}' AS range_end,
    '{{ latest_date }}' AS latest,
    '{{ max_date(table=search_data.items_snapshot) }}' AS snapshot_max,
    ds
FROM search_data.items_snapshot
WHERE ds BETWEEN '{{start_date}}' AND '{{ end_date }}'
"""

v1 = StagingQuery(
    query=query,
    startPartition="2024-03-15",
    metaData=MetaData(
        outputNamespace="search_features",
        dependencies=["search_data.items_snapshot/ds={{ ds }}"],
        tableProperties={"source": "chronon"},
    ),
)
