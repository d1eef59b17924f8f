"""The deterministic idempotency key a batch-job submission carries.

Same join name, same date range and same model transforms -> same key, in any process and on any
retry, so the backend answers a retried submit with the job it already started. Changing the model
transforms (a new model version, another mapping) changes the key: that is a different job.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal dicts give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def model_transforms_hash(join: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``join["modelTransforms"]``."""
    if "modelTransforms" not in join:
        raise ValueError(f"join {join_name(join)!r} has no modelTransforms")
    return hashlib.sha256(canonical_json(join["modelTransforms"]).encode()).hexdigest()


def join_name(join: dict[str, Any]) -> str:
    try:
        return join["metaData"]["name"]
    except (KeyError, TypeError):
        raise ValueError("join has no metaData.name; pass the compiled join's thrift JSON") from None


def idempotency_key(join: dict[str, Any], start_ds: str, end_ds: str) -> str:
    """hex sha256 over (join name, start_ds, end_ds, model transforms hash)."""
    material = canonical_json([join_name(join), start_ds, end_ds, model_transforms_hash(join)])
    return hashlib.sha256(material.encode()).hexdigest()
