"""Two models on two backends over the dt-partitioned orders source.

`order_fraud` runs on sagemaker, `basket_embedder` on the reference backend. The join-level
calls go to one backend, chosen with the extra Join kwarg model_transform_backend, which the
compiler writes into metaData.customJson.
"""
from ai.chronon.join import DataType, Join, JoinPart
from ai.chronon.model import InferenceSpec, Model, ModelTransform, ModelTransforms

from group_bys.starter import order_totals, purchases
from sources.shared_sources import orders_by_dt

order_fraud = Model(
    name="order_fraud",
    inference_spec=InferenceSpec(
        model_backend="sagemaker",
        model_backend_params={"endpoint_name": "order-fraud", "region": "eu-west-1", "model_version": "7"},
    ),
    input_schema=[
        ("order_total", DataType.DOUBLE),
        ("orders_7d", DataType.LONG),
        ("spend_30d", DataType.DOUBLE),
    ],
    output_schema=[("fraud_score", DataType.DOUBLE)],
)

basket_embedder = Model(
    name="basket_embedder",
    inference_spec=InferenceSpec(
        model_backend="reference",
        model_backend_params={"model_name": "basket_embedder", "model_version": "2"},
    ),
    input_schema=[("order_id", DataType.STRING)],
    output_schema=[("embedding", DataType.LIST(DataType.DOUBLE))],
)

v1 = Join(
    left=orders_by_dt,
    right_parts=[JoinPart(group_by=order_totals.v1), JoinPart(group_by=purchases.v1)],
    model_transforms=ModelTransforms(
        transforms=[
            ModelTransform(
                model=order_fraud,
                input_mappings={
                    "orders_7d": "starter_order_totals_v1_order_id_count_7d",
                    "spend_30d": "starter_purchases_v1_price_sum_30d",
                },
            ),
            ModelTransform(model=basket_embedder, prefix="basket"),
        ],
        passthrough_fields=["order_id", "user_id", "order_total"],
    ),
    online=True,
    model_transform_backend="sagemaker",
    description="Fraud score and basket embedding per order.",
)
