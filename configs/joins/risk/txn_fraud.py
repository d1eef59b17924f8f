"""Card transactions joined with user spend stats, scored by a fraud model and a merchant embedder."""
from ai.chronon.join import DataType, Join, JoinPart
from ai.chronon.model import InferenceSpec, Model, ModelTransform, ModelTransforms

from group_bys.risk import user_txn_stats
from sources.risk import transactions

fraud_scorer = Model(
    name="fraud_scorer",
    inference_spec=InferenceSpec(
        # The demo runs every model on the reference backend shipped with chronon-airflow.
        model_backend="reference",
        model_backend_params={"model_name": "fraud_scorer", "model_version": "1"},
    ),
    input_schema=[
        ("amount_cents", DataType.LONG),
        ("txn_count_7d", DataType.LONG),
        ("amount_sum_30d", DataType.LONG),
    ],
    output_schema=[("fraud_score", DataType.DOUBLE)],
)

merchant_embedder = Model(
    name="merchant_embedder",
    inference_spec=InferenceSpec(
        model_backend="reference",
        model_backend_params={"model_name": "merchant_embedder", "model_version": "1"},
    ),
    input_schema=[("merchant_id", DataType.STRING)],
    output_schema=[("embedding", DataType.LIST(DataType.DOUBLE))],
)

v1 = Join(
    left=transactions,
    right_parts=[JoinPart(group_by=user_txn_stats.v1)],
    model_transforms=ModelTransforms(
        transforms=[
            # No prefix: the output column is plain `fraud_score`.
            ModelTransform(
                model=fraud_scorer,
                input_mappings={
                    "txn_count_7d": "risk_user_txn_stats_v1_txn_id_count_7d",
                    "amount_sum_30d": "risk_user_txn_stats_v1_amount_cents_sum_30d",
                },
            ),
            # Prefixed: the output column is `merchant_embedding`.
            ModelTransform(model=merchant_embedder, prefix="merchant"),
        ],
        passthrough_fields=["txn_id", "user_id", "merchant_id"],
    ),
    online=True,
    offline_schedule="@daily",
    description="Per-transaction fraud score and merchant embedding.",
)
