"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow >= 3.2 builds the connection form from the declarative ``conn-fields`` and
``ui-field-behaviour`` below (without importing the hook); ``ModelBackendHook`` returns the same
data from ``get_ui_field_behaviour``/``get_connection_form_widgets`` for older tooling. This
module must stay import-light: the webserver loads it for every provider listing.
"""

from typing import Any

CONN_TYPE = "chronon_model_backend"
HOOK_NAME = "Chronon Model Backend"
INTEGRATION = "Chronon"

# Extra fields of a model-backend connection (stored in the connection's ``extra`` JSON).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "base_url": {
        "label": "Base URL",
        "description": "Full URL of the backend, e.g. https://models.internal:8443/api. Overrides host/port/schema.",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {"label": "Request timeout (s)", "schema": {"type": ["number", "null"], "default": 30}},
    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["number", "null"], "default": 10}},
    "max_attempts": {
        "label": "Attempts per call",
        "description": "Tries per call on 5xx, 429 and connection errors (1 = no retry).",
        "schema": {"type": ["integer", "null"], "default": 5},
    },
    "backoff_max": {"label": "Max backoff (s)", "schema": {"type": ["number", "null"], "default": 30}},
}
UI_FIELD_BEHAVIOUR = {
    "hidden-fields": ["login", "extra"],
    "relabeling": {"schema": "Scheme (http/https)", "password": "Bearer token"},
    "placeholders": {"host": "127.0.0.1 or https://models.internal", "port": "8765", "schema": "http"},
}


def get_provider_info() -> dict:
    return {
        "package-name": "chronon-airflow",
        "name": "Chronon model transforms",
        "description": "Chronon CHIP-9 model-transform orchestration: model backend hook, operators, sensors, "
                       "triggers, the model backend job link and the failure notifier.",
        "versions": ["0.1.0"],
        "integrations": [{"integration-name": INTEGRATION, "external-doc-url": "https://chronon.ai"}],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "chronon_airflow.hooks.model_backend.ModelBackendHook",
                "hook-name": HOOK_NAME,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["chronon_airflow.hooks.model_backend"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["chronon_airflow.operators.model_backend"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["chronon_airflow.sensors.model_batch_job"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["chronon_airflow.triggers.model_batch_job",
                                                                         "chronon_airflow.triggers.partition"]}],
        # The job link builds its URL from XCom only (chronon_airflow.links.model_backend); the plugin
        # also binds it to the operators declaring it, for the API server.
        "extra-links": ["chronon_airflow.links.model_backend.ModelBackendJobLink",
                        "chronon_airflow.links.spark.SparkApplicationLink"],
        "notifications": ["chronon_airflow.notifications.failure.ChrononFailureNotifier"],
    }
