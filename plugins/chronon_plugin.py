"""Airflow plugin "chronon": partition macros, the batch-job sensor's backend link, the Chronon page.

Thin on purpose: the code lives in ``chronon_airflow.plugin`` (installed with the package), so the
same version runs in the API server, scheduler and workers whichever plugins folder is mounted.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from chronon_airflow.plugin import links, macros, page
from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor


class _SensorJobLink(links.ModelBackendJobLink):
    # Registering the link for the sensor makes the API server use this class (not a bare XCom
    # lookup) for the sensor's button, so it works before the worker stored a URL.
    operators = [ModelBatchJobSensor]


class ChrononPlugin(AirflowPlugin):
    name = "chronon"  # templates: {{ macros.chronon.ds_range(params.start_ds, params.end_ds) }}
    macros = list(macros.MACROS)
    operator_extra_links = [_SensorJobLink()]
    fastapi_apps = [{"app": page.app, "url_prefix": page.URL_PREFIX, "name": "Chronon"}]
    # The nav entry: Airflow's UI frames href at /plugin/chronon. href has no leading slash so it
    # resolves against the UI's base URL (Airflow behind a path prefix keeps working).
    external_views = [{
        "name": "Chronon",
        "href": page.URL_PREFIX.lstrip("/") + "/",
        "url_route": "chronon",
        "destination": "nav",
        "category": "browse",
    }]
