"""Standalone staging query (no dependencies): a 5% sample of ad clicks joined with page views."""
from ai.chronon.api.ttypes import MetaData, StagingQuery

base = StagingQuery(
    query="""
SELECT
    clicks.page_view_id,
    clicks.ad_id,
    clicks.was_clicked,
    views.page_id,
    views.visitor_id,
    views.device_class,
    views.geo_region,
    CAST(views.epoch_ms AS LONG) AS ts,
    views.ds
FROM ads_raw.ad_clicks AS clicks
JOIN ads_raw.page_views AS views
  ON clicks.page_view_id = views.page_view_id
WHERE views.ds BETWEEN '{{ start_date }}' AND '{{ end_date }}'
  AND ABS(HASH(clicks.page_view_id)) % 100 < 5
""",
    startPartition="2022-01-01",
    metaData=MetaData(
        name="click_log",
        outputNamespace="default",
    ),
)
