"""Daily venue engagement rollup. Has its own dependency and fills [start_date, end_date] per run."""
from ai.chronon.api.ttypes import MetaData, StagingQuery

venue_sql = """
SELECT
    venue_id,
    GEO_CELL(latitude, longitude, 10) AS region_cell,
    COUNT(DISTINCT viewer_id) FILTER (WHERE kind = 'impression') AS impressions_1d,
    COUNT(DISTINCT viewer_id) FILTER (WHERE kind = 'view') AS views_1d,
    ds
FROM growth_raw.venue_events
WHERE ds BETWEEN '{{ start_date }}' AND '{{ end_date }}'
GROUP BY venue_id, GEO_CELL(latitude, longitude, 10), ds
"""

v1 = StagingQuery(
    query=venue_sql,
    startPartition="2020-06-01",
    setups=[
        "CREATE TEMPORARY FUNCTION GEO_CELL AS 'com.example.udf.GeoCell'",
    ],
    metaData=MetaData(
        name="venue_daily",
        outputNamespace="growth_stage",
        dependencies=["growth_raw.venue_events/ds={{ ds }}"],
        tableProperties={
            "owner_note": """{"contact": "growth-ml"}""",
        },
    ),
)
