"""Per-account session rollup published as a view (createView): no date templates allowed."""
from ai.chronon.api.ttypes import MetaData, StagingQuery

v1 = StagingQuery(
    query="""
SELECT
    account_id,
    SUM(duration_ms) / 1000 AS session_seconds,
    COUNT(*) AS screen_loads,
    MAX(ts) AS ts,
    ds
FROM growth_raw.app_sessions
GROUP BY account_id, ds
""",
    startPartition="2023-01-01",
    metaData=MetaData(
        name="session_rollup_view",
        outputNamespace="growth_stage",
    ),
    createView=True,
)
