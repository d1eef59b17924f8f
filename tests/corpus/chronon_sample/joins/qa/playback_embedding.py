"""Model transforms on a streaming left with a cron schedule (02:30 daily), reference backend.

Its output feeds the chained GroupBy group_bys/qa/playback_embedding_stats.py.
"""
from ai.chronon.join import DataType, Join, JoinPart
from ai.chronon.model import InferenceSpec, Model, ModelTransform, ModelTransforms

from group_bys.qa import session_sum
from sources import shared_sources

session_encoder = Model(
    name="session_encoder",
    inference_spec=InferenceSpec(
        model_backend="reference",
        model_backend_params={"model_name": "session_encoder", "model_version": "1"},
    ),
    input_schema=[
        ("session_seconds", DataType.DOUBLE),
        ("lifetime_seconds", DataType.DOUBLE),
    ],
    output_schema=[("vector", DataType.LIST(DataType.DOUBLE))],
)

v1 = Join(
    left=shared_sources.session_events_streaming,
    right_parts=[JoinPart(group_by=session_sum.v1)],
    model_transforms=ModelTransforms(
        transforms=[
            ModelTransform(
                model=session_encoder,
                input_mappings={"lifetime_seconds": "qa_session_sum_v1_session_seconds_sum"},
                output_mappings={"vector": "session_vector"},
                prefix="enc",
            ),
        ],
        passthrough_fields=["account_id", "session_seconds"],
    ),
    online=True,
    offline_schedule="30 2 * * *",
)
