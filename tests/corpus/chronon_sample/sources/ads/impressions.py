"""Sources over the ads click_log staging query.

The table name comes from get_staging_query_output_table_name without full_name, so it has no
namespace: the dependency reads `ads_click_log_base/ds={{ ds }}`.
"""
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.query import Query, select
from ai.chronon.utils import get_staging_query_output_table_name

from staging_queries.ads.click_log import base


def click_log_events(*columns):
    """Events from the click_log output with just the given columns."""
    return Source(events=EventSource(
        table=get_staging_query_output_table_name(base),
        query=Query(
            selects=select(*columns),
            time_column="ts",
        ),
    ))
