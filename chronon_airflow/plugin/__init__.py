"""The pieces of the ``chronon`` Airflow plugin (``plugins/chronon_plugin.py`` only wires them).

``macros``: partition helpers for templates; ``links``: the sensor's link to the backend's job page;
``page``: the "Chronon" FastAPI app. Importing this package imports neither the API server nor
the task SDK, so workers loading the plugin for its macros stay light.
"""
