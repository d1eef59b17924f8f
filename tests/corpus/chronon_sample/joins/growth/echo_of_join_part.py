"""A join whose only part reads another join's join-part table."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import join_part_echo
from sources import shared_sources

v1 = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=join_part_echo.v1)],
    output_namespace="growth_stage",
)
