"""One exceptions module, one base class, one name for a bad config."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import chronon_airflow
from chronon_airflow.exceptions import (
    BackendConflictError,
    BackendError,
    BackendNotFoundError,
    ChrononAirflowError,
    InvalidConfig,
    InvalidRange,
)

# Modules that need an optional extra to import (their classes are checked where it is installed).
OPTIONAL = {"chronon_airflow.lineage": "apache-airflow-providers-openlineage"}


def _modules():
    for info in pkgutil.walk_packages(chronon_airflow.__path__, "chronon_airflow."):
        try:
            yield importlib.import_module(info.name)
        except ImportError:
            if info.name not in OPTIONAL:
                raise


def test_every_exception_class_of_the_package_derives_from_the_base():
    classes = {obj for module in _modules() for obj in vars(module).values()
               if isinstance(obj, type) and issubclass(obj, BaseException)
               and obj.__module__.startswith("chronon_airflow")}
    assert {BackendError, InvalidConfig, InvalidRange} <= classes
    names = {c.__name__ for c in classes}
    assert {"ModelBackendConnectionMissing", "_TransientError", "_GitError"} <= names
    assert [c for c in classes if not issubclass(c, ChrononAirflowError)] == []


def test_the_local_engine_error_derives_from_it_too():
    pytest.importorskip("pyspark")
    from chronon_local_engine.core import NotSupportedByLocalEngine

    assert issubclass(NotSupportedByLocalEngine, ChrononAirflowError)
    assert issubclass(NotSupportedByLocalEngine, RuntimeError)  # what callers caught before


def test_backend_errors_are_one_class_wherever_imported():
    from chronon_airflow.backend import interface

    assert interface.BackendError is BackendError
    assert interface.BackendNotFoundError is BackendNotFoundError
    assert interface.BackendConflictError is BackendConflictError
    error = BackendError("boom", status_code=503, transient=True)
    assert (error.message, error.status_code, error.transient) == ("boom", 503, True)


def test_one_name_for_a_bad_config():
    """No alias of InvalidConfig is left in the package (the loader's ``Invalid`` is gone)."""
    aliases = []
    for path in sorted(Path(chronon_airflow.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
                    and node.value.id == "InvalidConfig"):
                aliases.append(f"{path.name}:{node.lineno}")
    assert aliases == []
    from chronon_airflow.config import loader

    assert not hasattr(loader, "Invalid")


def test_bad_catalog_settings_are_invalid_config():
    from chronon_airflow.catalogs import get_catalog

    with pytest.raises(InvalidConfig) as e:
        get_catalog("no_such_catalog")
    assert e.value.field == "[chronon] catalog"
    with pytest.raises(InvalidConfig):
        get_catalog("chronon_airflow.settings.DEFAULTS")  # importable, but not a PartitionCatalog
