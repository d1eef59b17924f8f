"""Model transforms on the sub-partitioned account source: a churn model scores every account row.

The left is the account entity source (mutation table `.../hr=00:00`, mutation topic), the schedule
is weekly and the only backend is `reference`.
"""
from ai.chronon.join import DataType, Join, JoinPart
from ai.chronon.model import InferenceSpec, Model, ModelTransform, ModelTransforms

from group_bys.growth import session_activity, session_totals_stitched
from sources import shared_sources

churn_scorer = Model(
    name="churn_scorer",
    inference_spec=InferenceSpec(
        model_backend="reference",
        model_backend_params={"model_name": "churn_scorer", "model_version": "4"},
    ),
    input_schema=[
        ("plan_tier", DataType.STRING),
        ("seconds_7d", DataType.DOUBLE),
        ("seconds_total", DataType.DOUBLE),
    ],
    output_schema=[("probability", DataType.DOUBLE)],
)

v1 = Join(
    left=shared_sources.account_entities,
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=session_totals_stitched.v1),
    ],
    model_transforms=ModelTransforms(
        transforms=[
            ModelTransform(
                model=churn_scorer,
                input_mappings={
                    "seconds_7d": "growth_session_activity_v1_session_seconds_sum_7d",
                    "seconds_total": "growth_session_totals_stitched_v1_session_seconds_sum",
                },
                output_mappings={"probability": "churn_probability"},
                prefix="churn",
            ),
        ],
        passthrough_fields=["account_id", "plan_tier"],
    ),
    online=True,
    offline_schedule="@weekly",
    description="Weekly churn probability per account.",
)
