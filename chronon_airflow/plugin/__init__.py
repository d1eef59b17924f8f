"""The pieces of the ``chronon`` Airflow plugin (``plugins/chronon_plugin.py`` only wires them).

``macros``: partition helpers for templates; ``operator_links``: the model-backend job link (a
provider part, :mod:`chronon_airflow.links`) bound to the operators declaring it, for the API server;
``page``: the "Chronon" FastAPI app; ``run_notes``: the scheduler listener that writes each run's
partition range to its note. Importing this package imports neither the API server nor
the task SDK, so workers loading the plugin for its macros stay light.
"""
