"""Compiled-config layer: parse and validate Chronon's thrift-JSON. No Airflow import."""
from chronon_airflow.config.loader import load_repo
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
