"""Model transforms on the namespace-less staging query output: a CTR model hosted on sagemaker.

Offline only and never scheduled (`@never`): it is run by hand when the model changes.
"""
from ai.chronon.join import DataType, Join, JoinPart
from ai.chronon.model import InferenceSpec, Model, ModelTransform, ModelTransforms

from group_bys.ads.ad_ctr import by_page
from group_bys.ads.click_stream import live
from sources.ads.impressions import click_log_events

ctr_predictor = Model(
    name="ctr_predictor",
    inference_spec=InferenceSpec(
        model_backend="sagemaker",
        model_backend_params={"endpoint_name": "ctr-predictor", "region": "us-west-2"},
    ),
    input_schema=[
        ("clicks_3d", DataType.LONG),
        ("page_ctr_3d", DataType.DOUBLE),
        ("device_class", DataType.STRING),
    ],
    output_schema=[("predicted_ctr", DataType.DOUBLE)],
)

v1 = Join(
    left=click_log_events("page_view_id", "ad_id", "page_id", "device_class"),
    right_parts=[JoinPart(group_by=live), JoinPart(group_by=by_page)],
    model_transforms=ModelTransforms(
        transforms=[
            ModelTransform(
                model=ctr_predictor,
                input_mappings={
                    "clicks_3d": "ads_click_stream_live_was_clicked_sum_3d",
                    "page_ctr_3d": "ads_ad_ctr_by_page_was_clicked_average_3d",
                },
            ),
        ],
        passthrough_fields=["page_view_id", "ad_id"],
    ),
    offline_schedule="@never",
)
