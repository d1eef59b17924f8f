"""Which models a compiled join uses and which model backend serves them (thrift-JSON dicts)."""
from __future__ import annotations

from typing import Any

from chronon_airflow.backend.idempotency import join_name


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


def resolve_join_backend(join: dict[str, Any], backend: str | None = None) -> str:
    """The backend that runs the join's transform-level calls (registerModelTransform, batch job).

    A join whose models all sit on one backend needs no choice. A join mixing backends must name one
    explicitly: CHIP-9 sends the whole join to a backend and it is that backend's decision how to
    reach the other models, so guessing here would silently pick the wrong service.
    """
    backends = join_backends(join)
    if backend is not None:
        if backend not in backends:
            raise ValueError(f"join {join_name(join)!r} has no model on backend {backend!r}; its backends are {backends}")
        return backend
    if len(backends) > 1:
        raise ValueError(f"join {join_name(join)!r} uses several model backends {backends}; pass backend= to choose "
                         "the one that runs its model transform")
    return backends[0]
