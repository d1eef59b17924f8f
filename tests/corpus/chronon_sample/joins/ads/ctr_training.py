"""Training set for the click model: every sampled page view with the ad CTR features."""
from ai.chronon.join import Join, JoinPart

from group_bys.ads.ad_ctr import by_page, by_region, by_visitor
from group_bys.ads.click_stream import live
from sources.ads.impressions import click_log_events

full = Join(
    left=click_log_events(
        "visitor_id", "page_view_id", "ad_id", "page_id", "was_clicked", "geo_region", "device_class"),
    right_parts=[JoinPart(group_by=gb) for gb in [by_page, by_visitor, live, by_region]],
)
