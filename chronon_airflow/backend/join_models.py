"""Which models a compiled join uses and which model backend serves them (thrift-JSON dicts)."""
from __future__ import annotations

import json
from typing import Any

from chronon_airflow.backend.idempotency import join_name
from chronon_airflow.config.model import pick_transform_backend
from chronon_airflow.exceptions import InvalidConfig


def transforms(join: dict[str, Any]) -> list[dict[str, Any]]:
    mt = join.get("modelTransforms")
    if not mt or not mt.get("transforms"):
        raise ValueError(f"join {join_name(join)!r} has no modelTransforms.transforms")
    return list(mt["transforms"])


def model_name(model: dict[str, Any]) -> str:
    try:
        return model["metaData"]["name"]
    except (KeyError, TypeError):
        raise ValueError("model has no metaData.name") from None


def model_backend(model: dict[str, Any]) -> str:
    backend = (model.get("inferenceSpec") or {}).get("modelBackend")
    if not backend:
        raise ValueError(f"model {model_name(model)!r} has no inferenceSpec.modelBackend")
    return backend


def models(join: dict[str, Any]) -> list[dict[str, Any]]:
    """The join's models in transform order, each once (two transforms may share a model)."""
    seen: dict[str, dict[str, Any]] = {}
    for t in transforms(join):
        seen.setdefault(model_name(t["model"]), t["model"])
    return list(seen.values())


def join_backends(join: dict[str, Any]) -> list[str]:
    """Distinct model backends of a join, in transform order."""
    return list(dict.fromkeys(model_backend(m) for m in models(join)))


def custom_json(join: dict[str, Any]) -> dict[str, Any]:
    """The join's ``metaData.customJson`` (a JSON string in thrift-JSON) as a dict."""
    raw = (join.get("metaData") or {}).get("customJson")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError as e:
        raise InvalidConfig("metaData.customJson", f"is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidConfig("metaData.customJson", "must be a JSON string encoding an object")
    return value


def transform_backend(join: dict[str, Any], backend: str | None = None) -> str:
    """The backend that runs the join's join-level calls (registerModelTransform, the batch job).

    ``backend`` when given (the plan's choice, passed by the renderer; it must serve one of the
    join's models), else the one rule every part uses,
    :func:`chronon_airflow.config.model.pick_transform_backend`: ``customJson.model_transform_backend``,
    else the first model's backend.
    """
    backends = join_backends(join)
    if backend is None:
        chosen = pick_transform_backend(custom_json(join), backends)
        assert chosen is not None  # models() refuses a join without transforms
        return chosen
    if backend not in backends:
        raise InvalidConfig("backend", f"join {join_name(join)!r} has no model on backend {backend!r}; "
                                       f"its backends are {backends}")
    return backend
