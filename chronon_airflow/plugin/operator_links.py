"""The plugin's ``operator_extra_links``: what the API server needs to compute the job link live.

An operator that declares :class:`~chronon_airflow.links.model_backend.ModelBackendJobLink` gets the
URL its worker stored after each try. Registering the link class for those operators through the
plugin makes the API server call it instead of a bare XCom lookup, so the button also works before
the first try ended (from the submit task's XCom). The operators are found, not listed: every class
of :data:`LINK_MODULES` that declares the link (today the batch-job sensor).
"""
from __future__ import annotations

from chronon_airflow.links.model_backend import ModelBackendJobLink
from chronon_airflow.operators import model_backend as backend_operators
from chronon_airflow.sensors import model_batch_job as batch_job_sensors

# The provider modules whose operators may declare the job link: the ones that submit or wait for
# a model batch job. Only these are imported (a plugin loads in every Airflow process).
LINK_MODULES = (batch_job_sensors, backend_operators)


def declaring_operators() -> list[type]:
    """The operator classes of :data:`LINK_MODULES` whose ``operator_extra_links`` hold the job link."""
    found = []
    for module in LINK_MODULES:
        for obj in vars(module).values():
            if not (isinstance(obj, type) and obj.__module__ == module.__name__):
                continue
            declared = getattr(obj, "operator_extra_links", ())  # a property on the class: not declared
            if isinstance(declared, (list, tuple)) and any(isinstance(link, ModelBackendJobLink) for link in declared):
                found.append(obj)
    return found


def api_server_links() -> list[ModelBackendJobLink]:
    """The plugin's ``operator_extra_links``: one job link bound to every operator declaring it."""
    bound = type("ModelBackendJobLinkForApiServer", (ModelBackendJobLink,), {"operators": declaring_operators()})
    return [bound()]
