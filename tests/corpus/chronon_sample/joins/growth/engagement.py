"""Venue engagement joins over the venue_daily staging query output, one per scheduling shape."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import venue_engagement, venue_engagement_rollup
from sources import shared_sources

# Offline, logged (samplePercent 100), custom env and table properties.
v1 = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1, tags={"stage": "beta"})],
    table_properties={"owner_note": """{"contact": "growth-ml"}"""},
    output_namespace="growth_stage",
    tags={"use_case": "venue_ranking"},
    env={
        "backfill": {"EXECUTOR_MEMORY": "10G"},
    },
    sample_percent=100.0,
)

# Never scheduled offline.
never = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1, tags={"stage": "beta"})],
    output_namespace="growth_stage",
    tags={"use_case": "venue_ranking"},
    offline_schedule="@never",
    sample_percent=100.0,
)

# A GroupBy of a GroupBy as the join part.
rollup_of_rollup = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement_rollup.v1)],
    output_namespace="growth_stage",
)

# Consistency check requested on an offline join.
consistency_probe = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1, tags={"stage": "beta"})],
    output_namespace="growth_stage",
    tags={"use_case": "venue_ranking"},
    check_consistency=True,
    sample_percent=100.0,
)

# Logging explicitly off.
no_logging = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1, tags={"stage": "beta"})],
    output_namespace="growth_stage",
    tags={"use_case": "venue_ranking"},
    sample_percent=0.0,
)

# Cron schedule: 03:00 every day.
nightly = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1)],
    output_namespace="growth_stage",
    offline_schedule="0 3 * * *",
)

# Weekly.
weekly = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1)],
    output_namespace="growth_stage",
    offline_schedule="@weekly",
)
