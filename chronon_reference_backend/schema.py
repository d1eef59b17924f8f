"""Chronon column semantics the reference backend needs: which columns a raw join produces and
whether a join's model transforms can be fed from (and written without clashing into) them."""
from __future__ import annotations

from typing import Any

from chronon_airflow import naming
from chronon_airflow.config.loader import parse_join_thrift
from chronon_airflow.exceptions import InvalidConfig

# thrift enum DataKind.
BOOLEAN, BYTE, SHORT, INT, LONG, FLOAT, DOUBLE, STRING, BINARY, DATE, TIMESTAMP, MAP, LIST, STRUCT = range(14)
NUMERIC_KINDS = frozenset({BYTE, SHORT, INT, LONG, FLOAT, DOUBLE})
FLOATING_KINDS = frozenset({FLOAT, DOUBLE})


def fields(schema: dict[str, Any] | None, what: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, dataType)`` of a STRUCT TDataType (a model's inputSchema/outputSchema)."""
    if not schema or schema.get("kind") != STRUCT or not schema.get("params"):
        raise ValueError(f"{what} must be a STRUCT with at least one field")
    return [(p["name"], p.get("dataType") or {}) for p in schema["params"]]


def raw_join_columns(join: dict[str, Any]) -> list[str]:
    """Columns of the raw join (the ``_pre_mt`` table, minus ``ds``), by the same rules the local
    engine writes them (``JoinConf.raw_join_columns``)."""
    try:
        return list(parse_join_thrift(join).raw_join_columns())
    except InvalidConfig as e:
        raise ValueError(f"the join is not a valid compiled join: {e.field or '<join>'}: {e.message}") from None


def output_columns(join: dict[str, Any]) -> list[str]:
    """Columns of the join's final (post-model) table, ``ds`` aside."""
    mt = join["modelTransforms"]
    columns = list(mt.get("passthroughFields") or [])
    for t in mt["transforms"]:
        for name, _ in fields(t["model"].get("outputSchema"), "outputSchema"):
            columns.append(naming.model_output_column(name, t.get("outputMappings"), t.get("prefix")))
    return columns


def transform_problems(join: dict[str, Any]) -> list[str]:
    """Every reason the join's model transforms cannot run against its raw join; empty when fine."""
    problems: list[str] = []
    mt = join.get("modelTransforms") or {}
    transforms = mt.get("transforms") or []
    if not transforms:
        return ["join has no modelTransforms.transforms"]
    try:
        available = raw_join_columns(join)
    except ValueError as e:
        return [str(e)]
    available_set = set(available)
    seen_outputs: dict[str, str] = {}
    for field in mt.get("passthroughFields") or []:
        if field not in available_set:
            problems.append(f"passthrough field {field!r} is not a column of the raw join (columns: {available})")
        seen_outputs[field] = "passthroughFields"
    for t in transforms:
        model = t.get("model") or {}
        name = (model.get("metaData") or {}).get("name", "?")
        try:
            inputs = [n for n, _ in fields(model.get("inputSchema"), f"model {name} inputSchema")]
            outputs = [n for n, _ in fields(model.get("outputSchema"), f"model {name} outputSchema")]
        except ValueError as e:
            problems.append(str(e))
            continue
        in_map = t.get("inputMappings") or {}
        out_map = t.get("outputMappings") or {}
        for key in in_map:
            if key not in inputs:
                problems.append(f"model {name}: inputMappings key {key!r} is not an input field (inputs: {inputs})")
        for key in out_map:
            if key not in outputs:
                problems.append(f"model {name}: outputMappings key {key!r} is not an output field (outputs: {outputs})")
        for field in inputs:
            column = in_map.get(field, field)
            if column not in available_set:
                via = f" (mapped from input {field!r})" if field in in_map else ""
                problems.append(f"model {name}: input {field!r} needs column {column!r}{via}, which the raw join "
                                f"does not produce (columns: {available})")
        for field in outputs:
            column = naming.model_output_column(field, out_map, t.get("prefix"))
            if column in ("ts", "ds"):
                problems.append(f"model {name}: output column {column!r} clashes with a reserved column")
            elif column in seen_outputs:
                problems.append(f"model {name}: output column {column!r} clashes with {seen_outputs[column]}")
            seen_outputs[column] = f"model {name}"
    return problems
