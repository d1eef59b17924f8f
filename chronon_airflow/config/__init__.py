"""Compiled-config layer: parse and validate Chronon's thrift-JSON. No Airflow import."""
from typing import Any

from chronon_airflow.config.model import (
    ConfigError,
    Dependency,
    GroupByConf,
    JoinConf,
    MetaData,
    Model,
    ModelTransform,
    Repo,
    Source,
    Team,
)

__all__ = [
    "ConfigError", "Dependency", "GroupByConf", "JoinConf", "MetaData", "Model", "ModelTransform",
    "Repo", "Source", "Team", "load_repo",
]


def __getattr__(name: str) -> Any:
    # The loader on first use: a task start unpickles its DAG's cached config and never loads a repo.
    if name == "load_repo":
        from chronon_airflow.config.loader import load_repo

        return load_repo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
