"""Airflow plugin "chronon": partition macros, the API server's model-backend job link, the Chronon page,
and the listener that notes each run's partition range.

Thin on purpose: the code lives in ``chronon_airflow.plugin`` (installed with the package), so the
same version runs in the API server, scheduler and workers whichever plugins folder is mounted.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from chronon_airflow.plugin import macros, operator_links, page, run_notes


class ChrononPlugin(AirflowPlugin):
    name = "chronon"  # templates: {{ macros.chronon.ds_range(params.start_ds, params.end_ds) }}
    macros = list(macros.MACROS)
    # The job link is a provider part (chronon_airflow.links); registered here for the operators that
    # declare it, so the API server computes it from XCom before the worker stored a URL.
    operator_extra_links = operator_links.api_server_links()
    fastapi_apps = [{"app": page.app, "url_prefix": page.URL_PREFIX, "name": "Chronon"}]
    # The scheduler notes each run's computed partition range on the run (chronon_airflow.plugin.run_notes).
    listeners = [run_notes]
    # The nav entry: Airflow's UI frames href at /plugin/chronon. href has no leading slash so it
    # resolves against the UI's base URL (Airflow behind a path prefix keeps working).
    external_views = [{
        "name": "Chronon",
        "href": page.URL_PREFIX.lstrip("/") + "/",
        "url_route": "chronon",
        "destination": "nav",
        "category": "browse",
    }]
