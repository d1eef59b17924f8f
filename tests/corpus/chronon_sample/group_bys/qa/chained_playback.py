"""Chained GroupBy over qa.parent_feed.parent that adds its own dependency.

User-given `dependencies` replace the ones the compiler would derive (the parent join's output
partition), so the list names that partition itself and then adds the extra signal.
get_join_output_table_name also sets the parent join's metaData.name: without that call the join
embedded in the compiled JoinSource would have no name at all (chronon-ai 0.0.115 only names it
while deriving the dependency it skips here).
"""
from ai.chronon.api import ttypes
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select
from ai.chronon.utils import get_join_output_table_name

from joins.qa import parent_feed

parent_table = get_join_output_table_name(parent_feed.parent, full_name=True)

chained_v1 = GroupBy(
    sources=ttypes.Source(
        joinSource=ttypes.JoinSource(
            join=parent_feed.parent,
            query=Query(
                selects=select(
                    account_id="account_id",
                    lifetime_seconds="qa_session_sum_v1_session_seconds_sum",
                ),
                start_partition="2023-04-15",
                time_column="ts",
            ),
        )
    ),
    keys=["account_id"],
    aggregations=[
        Aggregation(input_column="lifetime_seconds", operation=Operation.LAST),
    ],
    dependencies=[
        parent_table + "/ds={{ ds }}",
        "qa_raw.account_flags/ds={{ ds }}",
    ],
    online=True,
    production=True,
    backfill_start_date="2023-05-01",
)
