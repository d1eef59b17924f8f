"""Derivations over external parts; the external source has an offline GroupBy for backfills."""
from ai.chronon.join import (
    ContextualSource,
    DataType,
    Derivation,
    ExternalPart,
    ExternalSource,
    Join,
    JoinPart,
)

from group_bys.growth import account_state, session_activity
from sources import shared_sources

v1 = Join(
    left=shared_sources.session_events,
    sample_percent=100.0,
    right_parts=[
        JoinPart(group_by=session_activity.v1),
        JoinPart(group_by=account_state.v1),
    ],
    online_external_parts=[
        ExternalPart(
            ExternalSource(
                name="account_risk_service",
                team="growth",
                key_fields=[("account_id", DataType.STRING)],
                value_fields=[
                    ("risk_band", DataType.STRING),
                    ("open_tickets", DataType.LONG),
                    ("is_flagged", DataType.BOOLEAN),
                ],
                offline_group_by=session_activity.v1,
            ),
        ),
        ExternalPart(
            ContextualSource(
                fields=[
                    ("request_locale", DataType.STRING),
                    ("client_build", DataType.LONG),
                ],
                team="growth",
            )
        ),
    ],
    derivations=[
        *[
            Derivation(name=c, expression=f"ext_account_risk_service_{c}")
            for c in ["risk_band", "open_tickets", "is_flagged"]
        ],
        *[Derivation(name=c, expression=f"ext_contextual_{c}") for c in ["request_locale", "client_build"]],
        Derivation(name="*", expression="*"),
    ],
)
