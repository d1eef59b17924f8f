"""Provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""


def get_provider_info() -> dict:
    return {
        "package-name": "chronon-airflow",
        "name": "Chronon model transforms",
        "description": "Chronon CHIP-9 model-transform orchestration: model backend hook, operators, sensors and triggers.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "connection-type": "chronon_model_backend",
                "hook-class-name": "chronon_airflow.hooks.model_backend.ModelBackendHook",
            }
        ],
    }
