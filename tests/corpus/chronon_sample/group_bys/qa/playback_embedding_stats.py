"""Chained GroupBy over a model-transform join: the latest session vector per account."""
from ai.chronon.api.ttypes import JoinSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation
from ai.chronon.query import Query, select

from joins.qa import playback_embedding

v1 = GroupBy(
    sources=[Source(joinSource=JoinSource(
        join=playback_embedding.v1,
        query=Query(
            # enc_session_vector: prefix "enc" + output mapping "session_vector".
            selects=select("account_id", session_vector="enc_session_vector"),
            time_column="ts",
        ),
    ))],
    keys=["account_id"],
    aggregations=[Aggregation(input_column="session_vector", operation=Operation.LAST)],
    online=True,
)
