"""A join with an events left and nothing else."""
from ai.chronon.join import Join

from sources import shared_sources

v1 = Join(left=shared_sources.session_events, right_parts=[])
