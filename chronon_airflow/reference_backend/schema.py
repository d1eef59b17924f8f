"""Chronon column semantics the reference backend needs: which columns a raw join produces and
whether a join's model transforms can be fed from (and written without clashing into) them."""
from __future__ import annotations

from typing import Any

from chronon_airflow import naming

# thrift enum DataKind.
BOOLEAN, BYTE, SHORT, INT, LONG, FLOAT, DOUBLE, STRING, BINARY, DATE, TIMESTAMP, MAP, LIST, STRUCT = range(14)
NUMERIC_KINDS = frozenset({BYTE, SHORT, INT, LONG, FLOAT, DOUBLE})
FLOATING_KINDS = frozenset({FLOAT, DOUBLE})


def fields(schema: dict[str, Any] | None, what: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, dataType)`` of a STRUCT TDataType (a model's inputSchema/outputSchema)."""
    if not schema or schema.get("kind") != STRUCT or not schema.get("params"):
        raise ValueError(f"{what} must be a STRUCT with at least one field")
    return [(p["name"], p.get("dataType") or {}) for p in schema["params"]]


def _query(source: dict[str, Any]) -> dict[str, Any]:
    for kind in ("events", "entities", "joinSource"):
        if kind in source:
            return source[kind].get("query") or {}
    return {}


def _group_by_value_columns(group_by: dict[str, Any]) -> list[str]:
    """The columns a join part contributes before naming: aggregation outputs, or for a GroupBy
    without aggregations its selected non-key columns."""
    aggregations = group_by.get("aggregations")
    if aggregations:
        columns = []
        for agg in aggregations:
            windows = agg.get("windows") or [None]
            for w in windows:
                window = None if w is None else (w["length"], w["timeUnit"])
                columns.append(naming.aggregation_column(agg["inputColumn"], agg["operation"], window))
        return columns
    keys = set(group_by.get("keyColumns") or [])
    columns: list[str] = []
    for source in group_by.get("sources") or []:
        for col in (_query(source).get("selects") or {}):
            if col not in keys and col != "ts" and col not in columns:
                columns.append(col)
    return columns


def raw_join_columns(join: dict[str, Any]) -> list[str]:
    """Columns of the raw join (the ``_pre_mt`` table, minus ``ds``): the left side's selects, every
    join part's columns (``[prefix_]<groupBy>_<column>``) and the derivation names.

    Derivations are added on top of the base columns rather than replacing them: that is the more
    permissive reading, and a mapping to a column the raw join lacks still fails at run time with a
    precise message.
    """
    columns: list[str] = list((_query(join.get("left") or {}).get("selects") or {}).keys())
    for part in join.get("joinParts") or []:
        group_by = part.get("groupBy") or {}
        gb_name = (group_by.get("metaData") or {}).get("name", "")
        for col in _group_by_value_columns(group_by):
            columns.append(naming.join_part_column(gb_name, col, part.get("prefix")))
    for derivation in join.get("derivations") or []:
        if derivation.get("name") and derivation["name"] != "*":
            columns.append(derivation["name"])
    return list(dict.fromkeys(columns))


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
    available = raw_join_columns(join)
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
