"""Online-only external parts: a registered external source and contextual fields."""
from ai.chronon.join import (
    ContextualSource,
    DataType,
    Derivation,
    ExternalPart,
    ExternalSource,
    Join,
    JoinPart,
)

from group_bys.growth import venue_engagement
from sources import shared_sources

v1 = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1)],
    online_external_parts=[
        ExternalPart(
            ExternalSource(
                name="venue_profile_service",
                team="growth",
                key_fields=[("venue_id", DataType.STRING)],
                value_fields=[
                    ("display_name", DataType.STRING),
                    ("capacity", DataType.LONG),
                    ("is_verified", DataType.BOOLEAN),
                ],
            )
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
    table_properties={"owner_note": """{"contact": "growth-ml"}"""},
    output_namespace="growth_stage",
)

v2 = Join(
    left=shared_sources.venue_entities,
    right_parts=[JoinPart(group_by=venue_engagement.v1)],
    online_external_parts=[ExternalPart(ContextualSource(fields=[("venue_id", DataType.STRING)]))],
    table_properties={"owner_note": """{"contact": "growth-ml"}"""},
    derivations=[
        Derivation(name="*", expression="*"),
        Derivation(name="venue_id", expression="ext_contextual_venue_id"),
    ],
    output_namespace="growth_stage",
)
