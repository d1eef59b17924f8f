"""Typed, immutable views of Chronon's compiled thrift-JSON (``api.thrift`` semantics).

Only the fields chronon-airflow uses are typed; every object keeps the thrift JSON it came from
(``thrift()``), so unknown fields reach the Chronon driver and the model backend unchanged.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chronon_airflow import naming

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _thrift_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a loaded thrift-JSON object: callers may change it, the loaded config must not."""
    return json.loads(json.dumps(raw))


def pick_transform_backend(custom_json: Mapping[str, Any], backends: tuple[str, ...] | list[str]) -> str | None:
    """The one rule for the backend that runs a join's join-level calls (registerModelTransform, the
    batch job): CHIP-9 sends the whole join to one backend. ``customJson.model_transform_backend``
    when it names one of the join's model backends (the loader refuses any other value), else the
    first model's backend; ``None`` for a join without models.

    Everything asks this rule: the plan (:attr:`JoinConf.transform_backend`, recorded in the
    specs the operators get), the CLI and an operator given a bare join
    (:func:`chronon_airflow.backend.join_models.transform_backend`).
    """
    chosen = custom_json.get("model_transform_backend")
    if isinstance(chosen, str) and chosen in backends:
        return chosen
    return backends[0] if backends else None


@dataclass(frozen=True, slots=True)
class ConfigError:
    """A problem in one compiled file. ``path`` is relative to the repo root; ``field`` is a
    dotted path into the JSON (``""`` when the whole file is unreadable)."""

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field or '<file>'}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class Dependency:
    """One ``metaData.dependencies`` entry: a partition of ``table`` the job waits for.

    ``spec`` is upstream's ``<table>/<partition column>={{ ds }}[/<key>=<value>...]`` (or
    ``{{ macros.ds_add(ds, -N) }}`` for a lag of N days); it is parsed, never rendered with Jinja.
    For a run's ds the job needs partition ``ds - lag_days`` of ``table`` with the static
    ``subpartitions``, but only when that partition lies within ``[start, end]`` (either open).
    """

    name: str
    spec: str
    table: str  # "ns.table", or a bare "table" (Hive's default database)
    partition_column: str
    subpartitions: tuple[tuple[str, str], ...]  # static sub-partitions after the ds, e.g. (("hr", "00:00"),)
    lag_days: int  # negative: a later partition than the run's ds
    start: str | None
    end: str | None

    @property
    def key(self) -> tuple:
        """What makes two dependencies the same partition wait (``start``/``end`` aside)."""
        return (self.table, self.partition_column, self.subpartitions, self.lag_days)


@dataclass(frozen=True, slots=True)
class MetaData:
    name: str
    team: str
    output_namespace: str | None
    online: bool
    production: bool
    offline_schedule: str
    dependencies: tuple[Dependency, ...]
    custom_json: Mapping[str, Any]
    mode_to_env_map: Mapping[str, Mapping[str, str]]
    table_properties: Mapping[str, str]
    description: str | None
    sample_percent: float = 0.0  # > 0: the join's online requests are logged (log flattening)

    @property
    def check_consistency(self) -> bool:
        """``customJson.check_consistency`` is true: upstream runs online/offline consistency."""
        return self.custom_json.get("check_consistency") is True

    def owners(self) -> tuple[str, ...]:
        """E-mail owners named in ``customJson`` (``owners`` or ``owner``), if any."""
        value = self.custom_json.get("owners", self.custom_json.get("owner"))
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)):
            return tuple(v for v in value if isinstance(v, str))
        return ()


@dataclass(frozen=True, slots=True)
class Query:
    selects: Mapping[str, str]
    wheres: tuple[str, ...]
    start_partition: str | None
    end_partition: str | None
    time_column: str | None
    partition_column: str | None = None  # the source table's partition column when not "ds"


@dataclass(frozen=True, slots=True)
class Source:
    """One of ``events``, ``entities`` or ``joinSource`` (``kind``)."""

    kind: str
    query: Query
    table: str | None = None  # events.table or entities.snapshotTable, without sub-partitions
    topic: str | None = None
    mutation_table: str | None = None
    mutation_topic: str | None = None
    join: JoinConf | None = None  # joinSource.join, as embedded by the compiler
    # Static sub-partitions a source table name may carry ("ns.t/hr=00:00" -> (("hr", "00:00"),)).
    table_subpartitions: tuple[tuple[str, str], ...] = ()
    mutation_subpartitions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Window:
    length: int
    time_unit: int  # 0 HOURS, 1 DAYS


@dataclass(frozen=True, slots=True)
class Aggregation:
    input_column: str
    operation: int
    windows: tuple[Window, ...]
    arg_map: Mapping[str, str]

    def columns(self) -> tuple[str, ...]:
        if not self.windows:
            return (naming.aggregation_column(self.input_column, self.operation),)
        return tuple(
            naming.aggregation_column(self.input_column, self.operation, (w.length, w.time_unit))
            for w in self.windows
        )


class _CompiledConf:
    """What every compiled config (GroupBy, join, staging query) answers the same way: its name and
    team come from its metadata, its output table from Chronon's naming rule, and ``thrift()`` gives a
    copy of the JSON it was loaded from. Subclasses are frozen dataclasses with ``metadata`` and ``raw``."""

    __slots__ = ()
    metadata: MetaData
    raw: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def team(self) -> str:
        return self.metadata.team

    def thrift(self) -> dict[str, Any]:
        return _thrift_copy(self.raw)

    @property
    def output_table(self) -> str:
        return naming.output_table(self.metadata.output_namespace or "", self.name)


@dataclass(frozen=True, slots=True)
class GroupByConf(_CompiledConf):
    path: str
    metadata: MetaData
    sources: tuple[Source, ...]
    key_columns: tuple[str, ...]
    aggregations: tuple[Aggregation, ...]
    backfill_start_date: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    accuracy: int | None = None  # thrift Accuracy: TEMPORAL=0, SNAPSHOT=1; None when not compiled in

    @property
    def join_sources(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.kind == "joinSource")

    @property
    def has_streaming_source(self) -> bool:
        """A source with a topic or mutation topic (a JoinSource's parent left counts)."""
        for s in self.sources:
            if s.topic or s.mutation_topic:
                return True
            if s.join is not None and (s.join.left.topic or s.join.left.mutation_topic):
                return True
        return False

    @property
    def streaming(self) -> bool:
        """Online and fed by a topic, or online with TEMPORAL accuracy: Chronon keeps a streaming
        job for it (upstream ``should_schedule(conf, "streaming", "group_bys")``)."""
        return self.metadata.online and (self.has_streaming_source or self.accuracy == 0)

    @property
    def upload_table(self) -> str:
        return naming.upload_table(self.metadata.output_namespace or "", self.name)

    def output_columns(self) -> tuple[str, ...]:
        """Value columns before join-part naming: aggregation outputs, or for a GroupBy without
        aggregations its selected non-key columns."""
        if self.aggregations:
            return tuple(c for a in self.aggregations for c in a.columns())
        keys = set(self.key_columns) | {"ts"}
        return tuple(dict.fromkeys(c for s in self.sources for c in s.query.selects if c not in keys))


@dataclass(frozen=True, slots=True)
class JoinPart:
    group_by: GroupByConf
    key_mapping: Mapping[str, str]
    prefix: str | None

    def columns(self) -> tuple[str, ...]:
        return tuple(
            naming.join_part_column(self.group_by.name, c, self.prefix) for c in self.group_by.output_columns()
        )


@dataclass(frozen=True, slots=True)
class Derivation:
    name: str
    expression: str


@dataclass(frozen=True, slots=True)
class SchemaField:
    name: str
    kind: int  # thrift DataKind: LONG=4, DOUBLE=6, STRING=7, LIST=12, STRUCT=13, ...
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    backend: str
    backend_params: Mapping[str, str]
    input_schema: tuple[SchemaField, ...]
    output_schema: tuple[SchemaField, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    def thrift(self) -> dict[str, Any]:
        return _thrift_copy(self.raw)


@dataclass(frozen=True, slots=True)
class ModelTransform:
    model: Model
    input_mappings: Mapping[str, str]
    output_mappings: Mapping[str, str]
    prefix: str | None

    def output_columns(self) -> tuple[str, ...]:
        return tuple(
            naming.model_output_column(f.name, self.output_mappings, self.prefix) for f in self.model.output_schema
        )


@dataclass(frozen=True, slots=True)
class ModelTransforms:
    transforms: tuple[ModelTransform, ...]
    passthrough_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabelPart:
    """A join's ``labelPart``: label GroupBys joined later, on their own schedule and dependencies."""

    offline_schedule: str
    dependencies: tuple[Dependency, ...]
    left_start_offset: int
    left_end_offset: int


@dataclass(frozen=True, slots=True)
class JoinConf(_CompiledConf):
    path: str
    metadata: MetaData
    left: Source
    join_parts: tuple[JoinPart, ...]
    derivations: tuple[Derivation, ...]
    model_transforms: ModelTransforms | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    label_part: LabelPart | None = None

    @property
    def has_model_transforms(self) -> bool:
        return bool(self.model_transforms and self.model_transforms.transforms)

    @property
    def pre_mt_table(self) -> str:
        """Where the raw join lands when there are model transforms; the model batch job then writes
        the join's ``output_table`` (without model transforms the join writes it itself)."""
        return naming.pre_mt_table(self.metadata.output_namespace or "", self.name)

    @property
    def raw_join_table(self) -> str:
        """Where the Chronon join job itself writes."""
        return self.pre_mt_table if self.has_model_transforms else self.output_table

    @property
    def models(self) -> tuple[Model, ...]:
        return tuple(t.model for t in self.model_transforms.transforms) if self.model_transforms else ()

    @property
    def backends(self) -> tuple[str, ...]:
        """Distinct model backends, in first-use order."""
        return tuple(dict.fromkeys(m.backend for m in self.models))

    @property
    def transform_backend(self) -> str | None:
        """The backend that runs the join-level calls (registerModelTransform, the batch job): see
        :func:`pick_transform_backend`. The plan records it in every join-level task spec."""
        return pick_transform_backend(self.metadata.custom_json, self.backends)

    def raw_join_columns(self) -> tuple[str, ...]:
        """Columns of the raw join output (left selects, join-part columns, derivations), no ``ds``."""
        cols = list(self.left.query.selects)
        if self.left.query.time_column and self.left.query.time_column not in cols and self.left.kind == "events":
            cols.append("ts")
        # Upstream derivations: with any derivation, join-part columns survive only under "*".
        if not self.derivations or any(d.name == "*" for d in self.derivations):
            for part in self.join_parts:
                cols.extend(part.columns())
        cols.extend(d.name for d in self.derivations if d.name != "*")
        return tuple(dict.fromkeys(cols))


@dataclass(frozen=True, slots=True)
class StagingQueryConf(_CompiledConf):
    """A compiled ``StagingQuery``: Spark SQL with Chronon's date templates, run over a ds range."""

    path: str
    metadata: MetaData
    query: str
    start_partition: str | None
    setups: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Team:
    """A ``teams.json`` entry merged over ``default`` (the keys the compiler does not copy)."""

    name: str
    namespace: str | None
    maintainer_emails: tuple[str, ...]
    airflow_queue: str | None
    dag_start_date: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Repo:
    root: str
    teams: Mapping[str, Team]
    teams_json: Mapping[str, Any] = field(repr=False)
    joins: Mapping[str, JoinConf]
    group_bys: Mapping[str, GroupByConf]
    errors: tuple[ConfigError, ...]
    staging_queries: Mapping[str, StagingQueryConf] = field(default_factory=dict)

    def configs(self) -> tuple:
        """Every loaded config (joins, GroupBys, staging queries)."""
        return (*self.joins.values(), *self.group_bys.values(), *self.staging_queries.values())
