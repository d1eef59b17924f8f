"""Apply a join's model transforms to rows of its raw join, with CHIP-9 column semantics.

Output columns: ``ts`` (when the input has it), the ``passthroughFields``, then for each transform
its model's output fields renamed by ``outputMappings`` and prefixed by ``prefix``. Model input
``field`` is read from column ``inputMappings.get(field, field)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from chronon_airflow import naming
from chronon_reference_backend import models, schema


class TransformError(ValueError):
    """The rows cannot be transformed (a missing column, an unusable model); the message says why."""


def load_models(home: Path, join: dict[str, Any]) -> list[models.LoadedModel]:
    loaded = []
    for t in join["modelTransforms"]["transforms"]:
        try:
            model = models.load(home, t["model"])
            models.check_compatible(t["model"], model)
        except (FileNotFoundError, ValueError) as e:
            raise TransformError(str(e)) from e
        loaded.append(model)
    return loaded


def apply(join: dict[str, Any], frame: pd.DataFrame, loaded: list[models.LoadedModel], *,
          where: str, require_passthrough: bool = True) -> pd.DataFrame:
    """Transform ``frame`` (rows of the raw join). ``where`` names the data in error messages."""
    mt = join["modelTransforms"]
    out = pd.DataFrame(index=frame.index)
    if "ts" in frame.columns:
        out["ts"] = frame["ts"]
    for field in mt.get("passthroughFields") or []:
        if field in frame.columns:
            out[field] = frame[field]
        elif require_passthrough:
            raise TransformError(f"passthrough field {field!r} is missing from {where} "
                                 f"(columns: {list(frame.columns)})")
    for t, model in zip(mt["transforms"], loaded, strict=True):
        name = t["model"]["metaData"]["name"]
        in_map = t.get("inputMappings") or {}
        columns = []
        for field, _ in schema.fields(t["model"].get("inputSchema"), "inputSchema"):
            column = in_map.get(field, field)
            if column not in frame.columns:
                raise TransformError(f"model {name}: input {field!r} reads column {column!r}, which is missing "
                                     f"from {where} (columns: {list(frame.columns)})")
            columns.append(frame[column].tolist())
        try:
            values = model.predict(columns)
        except Exception as e:  # a model crash on these rows is the job's failure, reported as such
            raise TransformError(f"model {name} failed on {where}: {type(e).__name__}: {e}") from e
        (field, _), = schema.fields(t["model"].get("outputSchema"), "outputSchema")
        out[naming.model_output_column(field, t.get("outputMappings"), t.get("prefix"))] = values
    return out.reset_index(drop=True)
