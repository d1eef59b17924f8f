"""OpenLineage for Chronon tasks: every Chronon operator reports the tables its task reads and
writes, as the plan knows them (``PlannedTask.reads``/``writes``), through the openlineage
provider's operator protocol (``get_openlineage_facets_on_start``/``_on_complete``).

The render layer sets two tuples of table names on each operator, ``chronon_inputs`` and
``chronon_outputs``; nothing else happens at DAG parse time. The provider
(``pip install 'chronon-airflow[lineage]'``, an optional extra) calls the methods when a task
starts and ends; only then are the OpenLineage classes imported and a table named as a dataset.
Without the provider nothing here is ever imported or called.

Dataset names follow OpenLineage's naming spec for the catalog in use (``[chronon] catalog``),
so the events of the Spark job itself (the OpenLineage Spark listener) name the same datasets:

=============  ===================================================  ============================
catalog        namespace                                            name
=============  ===================================================  ============================
``hive``       ``hive://<host>:<port>`` of the metastore connection ``<schema>.<table>``
               (``[chronon] metastore_conn_id``, port 9083 unless
               the connection says otherwise)
``local``      ``file``                                             the table's folder in the
                                                                    warehouse (absolute path)
other          ``[chronon] lineage_namespace`` (else ``chronon``)   ``<schema>.<table>``
=============  ===================================================  ============================

``[chronon] lineage_namespace``, when set, replaces the namespace whatever the catalog (e.g. the
metastore's address as the Spark jobs see it, or when the worker cannot read the connection). A
bare table is in ``default``, as everywhere in Chronon.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chronon_airflow import settings, warehouse

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = ["ChrononLineageMixin", "dataset_names", "namespace", "operator_lineage"]

log = logging.getLogger(__name__)

HIVE_METASTORE_PORT = 9083
DEFAULT_NAMESPACE = "chronon"


def _hive_namespace() -> str:
    """``hive://<host>:<port>`` of ``[chronon] metastore_conn_id`` (its first host when several),
    best effort: ``hive`` when the connection cannot be read (set ``lineage_namespace`` then)."""
    conn_id = settings.get("metastore_conn_id")
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        host = (conn.host or "").split(",")[0].strip()
        host = host.split("://", 1)[-1].rstrip("/")
        if host:
            return f"hive://{host}:{conn.port or HIVE_METASTORE_PORT}"
        log.warning("OpenLineage: connection %r has no host; Hive tables are reported in namespace "
                    "'hive' (set [chronon] lineage_namespace)", conn_id)
    except Exception as e:  # best effort: lineage never fails a task
        log.warning("OpenLineage: cannot read the metastore connection %r (%s); Hive tables are "
                    "reported in namespace 'hive' (set [chronon] lineage_namespace)", conn_id, e)
    return "hive"


def _catalog() -> str:
    return settings.get("catalog") or "local"


def namespace(catalog: str | None = None) -> str:
    """The OpenLineage namespace of Chronon's tables in this deployment."""
    override = settings.get("lineage_namespace").strip()
    if override:
        return override
    catalog = catalog or _catalog()
    if catalog == "hive":
        return _hive_namespace()
    if catalog == "local":
        return "file"
    return DEFAULT_NAMESPACE


def dataset_names(tables: Iterable[str], catalog: str | None = None) -> list[tuple[str, str]]:
    """``(namespace, name)`` of each table, in order (see the module's docs). Pure but for the
    settings and, with the Hive catalog, one connection lookup."""
    tables = list(tables)
    if not tables:
        return []
    catalog = catalog or _catalog()
    ns = namespace(catalog)
    if catalog == "local":
        root = settings.warehouse()
        return [(ns, str(warehouse.table_path(root, t))) for t in tables]
    return [(ns, ".".join(warehouse.check_table(t))) for t in tables]


def operator_lineage(inputs: Iterable[str], outputs: Iterable[str]) -> OperatorLineage:
    """The provider's ``OperatorLineage`` of a task reading ``inputs`` and writing ``outputs``."""
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset

    catalog = _catalog()
    inputs, outputs = list(inputs), list(outputs)
    names = dataset_names(inputs + outputs, catalog)
    datasets = [Dataset(namespace=ns, name=name) for ns, name in names]
    return OperatorLineage(inputs=datasets[:len(inputs)], outputs=datasets[len(inputs):])


class ChrononLineageMixin:
    """The openlineage provider's operator protocol for a Chronon operator: put it first in the
    operator's bases. ``chronon_inputs``/``chronon_outputs`` (tables, ``ns.table``) are set by the
    render layer from the plan; an operator built by hand may set them too."""

    chronon_inputs: tuple[str, ...] = ()
    chronon_outputs: tuple[str, ...] = ()

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        return operator_lineage(self.chronon_inputs, self.chronon_outputs)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        # The same tables: a Chronon task's inputs and outputs do not depend on how it ran.
        return self.get_openlineage_facets_on_start()
