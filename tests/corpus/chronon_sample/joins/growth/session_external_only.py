"""A join made only of external parts (no GroupBy join parts)."""
from ai.chronon.join import (
    ContextualSource,
    DataType,
    Derivation,
    ExternalPart,
    ExternalSource,
    Join,
)

from group_bys.growth import session_probe
from sources import shared_sources

v1 = Join(
    left=shared_sources.session_events,
    right_parts=[],
    online_external_parts=[
        ExternalPart(
            ExternalSource(
                name="account_risk_service",
                team="growth",
                key_fields=[("account_id", DataType.STRING)],
                value_fields=[
                    ("risk_band", DataType.STRING),
                    ("open_tickets", DataType.LONG),
                ],
                offline_group_by=session_probe.v1,
            ),
        ),
        ExternalPart(
            ContextualSource(
                fields=[("request_locale", DataType.STRING)],
                team="growth",
            )
        ),
    ],
    derivations=[
        Derivation(name="risk_band", expression="ext_account_risk_service_risk_band"),
        Derivation(name="open_tickets", expression="ext_account_risk_service_open_tickets"),
        Derivation(name="request_locale", expression="ext_contextual_request_locale"),
        Derivation(name="*", expression="*"),
    ],
)
