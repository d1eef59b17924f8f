"""A join over a GroupBy with a deprecation date (the compiler prints a warning, not an error)."""
from ai.chronon.join import Join, JoinPart

from group_bys.growth import session_retired
from sources import shared_sources

v1 = Join(
    left=shared_sources.account_snapshot_batch,
    right_parts=[JoinPart(group_by=session_retired.v1)],
    output_namespace="growth_stage",
)
