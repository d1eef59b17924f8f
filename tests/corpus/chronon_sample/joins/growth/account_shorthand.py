"""A join with no join parts whose left is the sub-partitioned entity source."""
from ai.chronon.join import Join

from sources import shared_sources

v1 = Join(
    left=shared_sources.account_entities,
    right_parts=[],
)
