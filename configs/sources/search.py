"""Raw search-side sources: the search event stream, item clicks and the item snapshot."""
from ai.chronon.api.ttypes import EntitySource, EventSource, Source
from ai.chronon.query import Query, select

# One row per search: who searched, what they typed, which item they landed on. ts is epoch millis.
search_events = Source(events=EventSource(
    table="search_data.search_events",
    topic="search.search_events/serde=avro",
    query=Query(
        selects=select("user_id", "item_id", query_text="lower(trim(query))"),
        time_column="ts",
        start_partition="2024-03-15",
    ),
))

# One row per click on an item in the result list.
item_clicks = Source(events=EventSource(
    table="search_data.item_clicks",
    topic="search.item_clicks/serde=avro",
    query=Query(
        selects=select("item_id", "click_id", "dwell_time_ms"),
        time_column="ts",
        start_partition="2024-03-15",
    ),
))

# Daily snapshot of the item catalog.
items_snapshot = Source(entities=EntitySource(
    snapshotTable="search_data.items_snapshot",
    query=Query(
        selects=select("item_id", "category", "price_cents"),
        start_partition="2024-03-15",
    ),
))
