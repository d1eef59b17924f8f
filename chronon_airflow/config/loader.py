"""Read a compiled Chronon repo (``teams.json`` + ``production/``) into typed objects.

Pure: no Airflow import. A bad file becomes a :class:`ConfigError` beside the good configs and
never stops the rest from loading.

What a name may hold, and why (see the README's "Reading a Chronon repo"): every value here may end
up in a path (the local warehouse, the conf path spark-submit gets), an argv element, a Hive
partition filter, an Airflow id or an Asset name, and none is ever rendered by Jinja:

* config names ``[A-Za-z0-9_.-]`` (no leading ``.`` or ``-``): DAG ids and file names;
* namespaces and table names ``[A-Za-z0-9_]`` each, a table optionally without namespace (Hive's
  ``default``): path components and Hive identifiers;
* partition columns and sub-partition keys are identifiers; sub-partition values
  ``[A-Za-z0-9_.:+-]`` (``hr=00:00``, ``table_name=ns.view``): no quote, slash, space or brace, so
  a value can be neither a path separator, nor a template, nor break out of a partition filter.
"""
from __future__ import annotations

import builtins
import datetime as dt
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, overload

from chronon_airflow import naming
from chronon_airflow.config.model import (
    Aggregation,
    ConfigError,
    Dependency,
    Derivation,
    GroupByConf,
    JoinConf,
    JoinPart,
    LabelPart,
    MetaData,
    Model,
    ModelTransform,
    ModelTransforms,
    Query,
    Repo,
    SchemaField,
    Source,
    StagingQueryConf,
    Team,
    Window,
)
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.partitions import InvalidRange, parse_ds

# Names become DAG ids, task ids and table names: keep them to what all three accept.
# No leading '.' or '-': a name must never read as a relative path ("..") or a command-line option.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
# Model backends name an Airflow connection (``chronon_backend_<name>``). Backends and teams become
# DAG tags, which Airflow caps at 100 characters (a longer one would fail the whole DAG file).
BACKEND_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_TABLE = r"[A-Za-z0-9_]{1,128}(?:\.[A-Za-z0-9_]{1,128})?"
_SUB = r"[A-Za-z_][A-Za-z0-9_]{0,99}=[A-Za-z0-9_.:+-]{1,200}"
TABLE_RE = re.compile(rf"^{_TABLE}$")
# A source table may carry static sub-partitions: "ns.mutations/hr=00:00".
SOURCE_TABLE_RE = re.compile(rf"^(?P<table>{_TABLE})(?P<sub>(?:/{_SUB})*)$")
# Chronon's dependency spec: <table>/<column>=<ds template>[/<key>=<value>...]. The only templates
# are {{ ds }} and {{ macros.ds_add(ds, N) }}; a label part's spec may name {{ join_backfill_table }}.
_SPEC_RE = re.compile(
    rf"^(?P<table>{_TABLE}|\{{\{{\s*join_backfill_table\s*\}}\}})/(?P<col>[A-Za-z_][A-Za-z0-9_]{{0,99}})="
    r"\{\{\s*(?:ds|macros\.ds_add\(\s*ds\s*,\s*(?P<offset>[+-]?\d{1,9})\s*\))\s*\}\}"
    rf"(?P<sub>(?:/{_SUB})*)$"
)
JOIN_BACKFILL_TABLE = re.compile(r"^\{\{\s*join_backfill_table\s*\}\}$")
MAX_LAG_DAYS = 3650
_FILE_PART = re.compile(r"[A-Za-z0-9_.-]{1,200}")
# production/<kind folder> -> what the folder holds.
KINDS = {"joins": "join", "group_bys": "GroupBy", "staging_queries": "staging query"}
# Past this size a compiled file is not a real config (the biggest upstream joins are ~1 MB).
MAX_FILE_BYTES = 16 * 1024 * 1024
# Real compiled configs nest ~16 levels; far deeper JSON would hit Python's recursion limit later
# (deep copies, serialization) in a deeper call stack than the loader's and fail the DAG file.
MAX_NESTING = 100
SCHEDULE_RE = re.compile(r"^(@[a-z]+|[0-9*/,\- ]+)$")
# Presets the renderer maps onto a cron timetable, plus "@never" (manual only).
SCHEDULE_PRESETS = frozenset({"@never", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"})



def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


class _Reader:
    """Typed access into one JSON object that reports the dotted field path on failure.

    Annotations in the class body say ``builtins.str`` / ``builtins.int``: the methods ``str`` and
    ``int`` shadow the builtins there."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: builtins.str):
        if not isinstance(data, dict):
            raise InvalidConfig(path, f"expected an object, got {_type(data)}")
        self.data = data
        self.path = path

    def _f(self, key: builtins.str) -> builtins.str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: builtins.str) -> bool:
        return self.data.get(key) is not None

    @overload
    def obj(self, key: builtins.str, required: Literal[True] = True) -> _Reader: ...
    @overload
    def obj(self, key: builtins.str, required: bool) -> _Reader | None: ...

    def obj(self, key: builtins.str, required: bool = True) -> _Reader | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise InvalidConfig(self._f(key), "is required")
            return None
        return _Reader(value, self._f(key))

    @overload
    def str(self, key: builtins.str, required: Literal[True] = True, pattern: re.Pattern | None = None,
            what: builtins.str = "") -> builtins.str: ...
    @overload
    def str(self, key: builtins.str, required: bool, pattern: re.Pattern | None = None,
            what: builtins.str = "") -> builtins.str | None: ...

    def str(self, key: builtins.str, required: bool = True, pattern: re.Pattern | None = None,
            what: builtins.str = "") -> builtins.str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise InvalidConfig(self._f(key), "is required")
            return None
        if not isinstance(value, str):
            raise InvalidConfig(self._f(key), f"expected a string, got {_type(value)}")
        if pattern is not None and not pattern.fullmatch(value):  # fullmatch: "$" would allow a final "\n"
            raise InvalidConfig(self._f(key),
                                f"{value!r} is not a valid {what or 'value'} (allowed: {pattern.pattern})")
        return value

    def int(self, key: builtins.str, default: builtins.int | None = None) -> builtins.int:
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise InvalidConfig(self._f(key), "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidConfig(self._f(key), f"expected an integer, got {_type(value)}")
        return value

    def flag(self, key: builtins.str) -> bool:
        """thrift bool: compiled as 0/1 (true/false accepted too)."""
        value = self.data.get(key)
        if value is None:
            return False
        if value in (0, 1) and not isinstance(value, float):
            return bool(value)
        raise InvalidConfig(self._f(key), f"expected 0 or 1, got {value!r}")

    def date(self, key: builtins.str) -> builtins.str | None:
        value = self.str(key, required=False)
        if value is not None:
            _check_date(value, self._f(key))
        return value

    def list(self, key: builtins.str) -> builtins.list[tuple[builtins.str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidConfig(self._f(key), f"expected a list, got {_type(value)}")
        return [(f"{self._f(key)}[{i}]", v) for i, v in enumerate(value)]

    def str_list(self, key: builtins.str) -> tuple[builtins.str, ...]:
        out = []
        for path, v in self.list(key):
            if not isinstance(v, str):
                raise InvalidConfig(path, f"expected a string, got {_type(v)}")
            out.append(v)
        return tuple(out)

    def str_map(self, key: builtins.str) -> Mapping[builtins.str, builtins.str]:
        value = self.data.get(key)
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            raise InvalidConfig(self._f(key), f"expected an object, got {_type(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise InvalidConfig(f"{self._f(key)}.{k}", f"expected a string, got {_type(v)}")
        return _frozen(value)


def _type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def _valid_schedule(schedule: str) -> bool:
    """What Airflow's cron timetable accepts: an invalid one would fail the whole DAG file."""
    if schedule.startswith("@"):
        return schedule in SCHEDULE_PRESETS
    from croniter import croniter  # Airflow's own cron library

    return len(schedule.split()) == 5 and croniter.is_valid(schedule)


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` nests more than ``limit`` lists/objects deep (level by level: no recursion,
    and only containers are visited; ``json`` makes exactly ``dict`` and ``list``)."""
    level = [data] if type(data) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for value in level:
            children = value.values() if type(value) is dict else value
            below += [c for c in children if type(c) is dict or type(c) is list]
        level = below
    return False


def _check_date(value: str, field: str) -> dt.date:
    try:
        return parse_ds(value, field)
    except InvalidRange as e:
        raise InvalidConfig(field, str(e).replace(f"{field} = ", "", 1)) from None


def _subpartitions(text: str) -> tuple[tuple[str, str], ...]:
    """``"/hr=00:00/k=v"`` -> ``(("hr", "00:00"), ("k", "v"))`` (already matched by the grammar)."""
    return tuple(tuple(part.split("=", 1)) for part in text.split("/") if part)  # type: ignore[misc]


def parse_source_table(value: str, field: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A source table name with its optional static sub-partitions (``ns.t/hr=00:00``)."""
    m = SOURCE_TABLE_RE.fullmatch(value)
    if not m:
        raise InvalidConfig(field, f"{value!r} is not a table: [namespace.]table of [A-Za-z0-9_], "
                                   "optionally followed by "
                                   "/key=value sub-partitions (values of [A-Za-z0-9_.:+-])")
    return m.group("table"), _subpartitions(m.group("sub"))


# --- pieces ---------------------------------------------------------------------------------


def wait_for_name(spec: str) -> str:
    """The compiler's name for a dependency given only as a spec (``utils.wait_for_name``)."""
    return re.sub("_+", "_", "wait_for_" + re.sub("[^a-zA-Z0-9]", "_", spec)).rstrip("_")


def parse_dependency(text: Any, field: str, join_backfill_table: str | None = None) -> Dependency:
    """One ``metaData.dependencies`` entry: the compiler's JSON string ``{"name", "spec", "start",
    "end"}``, or a bare spec string (staging queries list their dependencies that way)."""
    if not isinstance(text, str):
        raise InvalidConfig(field, f"expected a string, got {_type(text)}")
    spec_field = field
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidConfig(field, f"is not valid JSON: {e.msg}") from None
        r = _Reader(data, field)
        spec, spec_field = r.str("spec"), f"{field}.spec"
        name, start, end = r.str("name", required=False), r.date("start"), r.date("end")
    else:
        spec, name, start, end = text, None, None, None
    m = _SPEC_RE.fullmatch(spec)
    if not m:
        raise InvalidConfig(
            spec_field,
            f"{spec!r} is not a partition spec: [namespace.]table/<column>={{{{ ds }}}} (or "
            "{{ macros.ds_add(ds, N) }}) followed by optional /key=value sub-partitions; tables, columns and keys "
            "of [A-Za-z0-9_], values of [A-Za-z0-9_.:+-]",
        )
    lag = -int(m.group("offset")) if m.group("offset") else 0
    if abs(lag) > MAX_LAG_DAYS:
        raise InvalidConfig(spec_field, f"a lag of {lag} days is out of range -{MAX_LAG_DAYS}..{MAX_LAG_DAYS}")
    table = m.group("table")
    if JOIN_BACKFILL_TABLE.fullmatch(table):
        if join_backfill_table is None:
            raise InvalidConfig(spec_field, "{{ join_backfill_table }} is only meaningful in a join's labelPart")
        table = join_backfill_table
    if start and end and start > end:
        raise InvalidConfig(f"{field}.start", f"start {start} is after end {end}")
    return Dependency(
        name=name or wait_for_name(spec),
        spec=spec,
        table=table,
        partition_column=m.group("col"),
        subpartitions=_subpartitions(m.group("sub")),
        lag_days=lag,
        start=start,
        end=end,
    )


def parse_metadata(r: _Reader, top: bool = True, join_backfill_table: str | None = None) -> MetaData:
    """``metaData`` of a config. ``top``: the config a file defines (its team, schedule and
    dependencies matter); ``False`` for the GroupBys and joins the compiler embeds in it, whose
    dependencies and schedule are the embedded config's own business and never read here."""
    custom_raw = r.data.get("customJson")
    custom: dict[str, Any] = {}
    if custom_raw is not None:
        if not isinstance(custom_raw, str):
            raise InvalidConfig(r._f("customJson"), f"expected a JSON string, got {_type(custom_raw)}")
        try:
            custom = json.loads(custom_raw) if custom_raw.strip() else {}
        except json.JSONDecodeError as e:
            raise InvalidConfig(r._f("customJson"), f"is not valid JSON: {e.msg}") from None
        if not isinstance(custom, dict):
            raise InvalidConfig(r._f("customJson"), "must encode a JSON object")
    env_map = {}
    modes = r.obj("modeToEnvMap", required=False)
    if modes is not None:
        for mode in modes.data:
            env_map[mode] = modes.str_map(mode)
    schedule = r.str("offlineSchedule", required=False) or "@daily"
    if top:
        _check_schedule(schedule, r._f("offlineSchedule"))
    sample = r.data.get("samplePercent")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, float))):
        raise InvalidConfig(r._f("samplePercent"), f"expected a number, got {_type(sample)}")
    return MetaData(
        name=r.str("name", pattern=NAME_RE, what="name"),
        team=r.str("team", pattern=IDENT_RE, what="team name", required=top) or "",
        output_namespace=r.str("outputNamespace", required=False, pattern=IDENT_RE, what="namespace"),
        online=r.flag("online"),
        production=r.flag("production"),
        offline_schedule=schedule,
        dependencies=tuple(parse_dependency(v, p, join_backfill_table) for p, v in r.list("dependencies"))
        if top else (),
        custom_json=_frozen(custom),
        mode_to_env_map=_frozen(env_map),
        table_properties=r.str_map("tableProperties"),
        description=r.str("description", required=False),
        sample_percent=float(sample or 0),
    )


def _check_schedule(schedule: str, field: str) -> None:
    if not SCHEDULE_RE.fullmatch(schedule) or not _valid_schedule(schedule):
        raise InvalidConfig(field, f"{schedule!r} is not a cron expression or @preset "
                            f"({', '.join(sorted(SCHEDULE_PRESETS))})")


def parse_query(r: _Reader | None) -> Query:
    if r is None:
        return Query(MappingProxyType({}), (), None, None, None)
    return Query(
        selects=r.str_map("selects"),
        wheres=r.str_list("wheres"),
        start_partition=r.date("startPartition"),
        end_partition=r.date("endPartition"),
        time_column=r.str("timeColumn", required=False),
        partition_column=r.str("partitionColumn", required=False, pattern=IDENT_RE, what="partition column"),
    )


def parse_source(r: _Reader) -> Source:
    kinds = [k for k in ("events", "entities", "joinSource") if r.has(k)]
    if len(kinds) != 1:
        raise InvalidConfig(r.path, "must have exactly one of events, entities, joinSource")
    kind = kinds[0]
    s = r.obj(kind)
    query = parse_query(s.obj("query", required=False))
    if kind == "events":
        table, sub = parse_source_table(s.str("table"), s._f("table"))
        return Source(kind, query, table=table, topic=s.str("topic", required=False), table_subpartitions=sub)
    if kind == "entities":
        table, sub = parse_source_table(s.str("snapshotTable"), s._f("snapshotTable"))
        mutation = s.str("mutationTable", required=False)
        mutation_table, mutation_sub = parse_source_table(mutation, s._f("mutationTable")) if mutation else (None, ())
        return Source(
            kind,
            query,
            table=table,
            table_subpartitions=sub,
            mutation_table=mutation_table,
            mutation_subpartitions=mutation_sub,
            mutation_topic=s.str("mutationTopic", required=False),
        )
    join = parse_join(s.obj("join"), path="", top=False)
    return Source(kind, query, join=join)


def parse_group_by(r: _Reader, path: str, top: bool = True) -> GroupByConf:
    aggs = []
    for p, a in r.list("aggregations"):
        ar = _Reader(a, p)
        windows = tuple(
            Window(length=_Reader(w, wp).int("length"), time_unit=_check_unit(_Reader(w, wp)))
            for wp, w in ar.list("windows")
        )
        op = ar.int("operation")
        if op < 0 or op > 18:
            raise InvalidConfig(ar._f("operation"), f"unknown operation {op}")
        aggs.append(Aggregation(ar.str("inputColumn"), op, windows, ar.str_map("argMap")))
    accuracy = r.data.get("accuracy")
    if accuracy is not None and accuracy not in (0, 1):
        raise InvalidConfig(r._f("accuracy"), f"unknown accuracy {accuracy!r} (0 TEMPORAL, 1 SNAPSHOT)")
    return GroupByConf(
        path=path,
        metadata=parse_metadata(r.obj("metaData"), top=top),
        sources=tuple(parse_source(_Reader(v, p)) for p, v in r.list("sources")),
        key_columns=r.str_list("keyColumns"),
        aggregations=tuple(aggs),
        backfill_start_date=r.date("backfillStartDate"),
        raw=r.data,
        accuracy=accuracy,
    )


def _check_unit(w: _Reader) -> int:
    unit = w.int("timeUnit")
    if unit not in (0, 1):
        raise InvalidConfig(w._f("timeUnit"), f"unknown time unit {unit} (0 HOURS, 1 DAYS)")
    if w.int("length") <= 0:
        raise InvalidConfig(w._f("length"), "window length must be positive")
    return unit


def _schema(r: _Reader, key: str) -> tuple[SchemaField, ...]:
    s = r.obj(key)
    fields = []
    for p, v in s.list("params"):
        fr = _Reader(v, p)
        dtype = fr.obj("dataType")
        fields.append(SchemaField(fr.str("name"), dtype.int("kind"), _frozen(dtype.data)))
    if not fields:
        raise InvalidConfig(s._f("params"), "a model schema needs at least one field")
    return tuple(fields)


def parse_model_transforms(r: _Reader) -> ModelTransforms:
    transforms = []
    for p, v in r.list("transforms"):
        tr = _Reader(v, p)
        mr = tr.obj("model")
        spec = mr.obj("inferenceSpec")
        model = Model(
            name=mr.obj("metaData").str("name", pattern=NAME_RE, what="model name"),
            backend=spec.str("modelBackend", pattern=BACKEND_RE, what="model backend name"),
            backend_params=spec.str_map("modelBackendParams"),
            input_schema=_schema(mr, "inputSchema"),
            output_schema=_schema(mr, "outputSchema"),
            raw=mr.data,
        )
        prefix = tr.str("prefix", required=False, pattern=IDENT_RE, what="prefix")
        transforms.append(ModelTransform(model, tr.str_map("inputMappings"), tr.str_map("outputMappings"), prefix))
    if not transforms:
        raise InvalidConfig(r._f("transforms"), "modelTransforms needs at least one transform")
    names = [t.model.name for t in transforms]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise InvalidConfig(f"{r._f('transforms')}[{i}].model.metaData.name",
                                f"model {n!r} appears twice in this join")
    return ModelTransforms(tuple(transforms), r.str_list("passthroughFields"))


def parse_join(r: _Reader, path: str, top: bool = True) -> JoinConf:
    parts = []
    for p, v in r.list("joinParts"):
        jr = _Reader(v, p)
        gb = parse_group_by(jr.obj("groupBy"), path="", top=False)
        parts.append(JoinPart(gb, jr.str_map("keyMapping"),
                              jr.str("prefix", required=False, pattern=IDENT_RE, what="prefix")))
    derivations = []
    for p, v in r.list("derivations"):
        dr = _Reader(v, p)
        derivations.append(Derivation(dr.str("name"), dr.str("expression")))
    mt = r.obj("modelTransforms", required=False)
    left = parse_source(r.obj("left"))
    if left.kind == "joinSource":
        raise InvalidConfig(r._f("left"), "a join's left must be events or entities")
    metadata = parse_metadata(r.obj("metaData"), top=top)
    transforms = parse_model_transforms(mt) if mt is not None else None
    label = r.obj("labelPart", required=False) if top else None
    conf = JoinConf(
        path=path,
        metadata=metadata,
        left=left,
        join_parts=tuple(parts),
        derivations=tuple(derivations),
        model_transforms=transforms,
        raw=r.data,
        label_part=parse_label_part(label, naming.output_table(metadata.output_namespace or "", metadata.name))
        if label is not None else None,
    )
    chosen = metadata.custom_json.get("model_transform_backend")
    if chosen is not None and chosen not in conf.backends:
        raise InvalidConfig(r._f("metaData.customJson.model_transform_backend"),
                            f"{chosen!r} is not the backend of any of this join's models "
                            f"({', '.join(conf.backends) or 'none'})")
    return conf


def parse_label_part(r: _Reader, join_output_table: str) -> LabelPart:
    meta = r.obj("metaData", required=False)
    deps: tuple[Dependency, ...] = ()
    schedule = "@daily"
    if meta is not None:
        schedule = meta.str("offlineSchedule", required=False) or "@daily"
        _check_schedule(schedule, meta._f("offlineSchedule"))
        deps = tuple(parse_dependency(v, p, join_output_table) for p, v in meta.list("dependencies"))
    return LabelPart(offline_schedule=schedule, dependencies=deps,
                     left_start_offset=r.int("leftStartOffset", default=0),
                     left_end_offset=r.int("leftEndOffset", default=0))


def parse_staging_query(r: _Reader, path: str) -> StagingQueryConf:
    setups = r.str_list("setups")
    return StagingQueryConf(
        path=path,
        metadata=parse_metadata(r.obj("metaData")),
        query=r.str("query"),
        start_partition=r.date("startPartition"),
        setups=setups,
        raw=r.data,
    )


def parse_join_thrift(data: Any) -> JoinConf:
    """A join from its thrift-JSON dict (e.g. received over the wire); raises :class:`InvalidConfig`."""
    return parse_join(_Reader(data, ""), path="")


# --- teams ------------------------------------------------------------------------------------


def parse_teams(data: Any) -> dict[str, Team]:
    r = _Reader(data, "")
    default = data.get("default") if isinstance(data.get("default"), dict) else {}
    teams = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise InvalidConfig(name, f"expected an object, got {_type(entry)}")
        merged = {**default, **entry}
        tr = _Reader(merged, name)
        emails = tr.data.get("maintainer_emails") or ()
        if isinstance(emails, str):
            emails = (emails,)
        if not isinstance(emails, (list, tuple)) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise InvalidConfig(f"{name}.maintainer_emails", "expected a list of e-mail addresses")
        teams[name] = Team(
            name=name,
            namespace=tr.str("namespace", required=False, pattern=IDENT_RE, what="namespace"),
            maintainer_emails=tuple(emails),
            airflow_queue=tr.str("airflow_queue", required=False, pattern=IDENT_RE, what="queue"),
            dag_start_date=tr.date("dag_start_date"),
            raw=_frozen(entry),
        )
    del r
    return teams


# --- repo -------------------------------------------------------------------------------------


def _files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


def walk_order(rel: str) -> tuple:
    """Sort key putting relative paths in :func:`_files`' order (a folder's files, by name, before
    its sub-folders): a subset of the repo loads in the same relative order as the whole."""
    parts = rel.split("/")
    return tuple((1, p) for p in parts[:-1]) + ((0, parts[-1]),)


def _selected(root: Path, folder: str, files: Iterable[str]) -> Iterator[Path]:
    """The given paths under ``production/<folder>/`` that :func:`_files` would yield (anything but
    a folder, no dot names), in its order."""
    prefix = f"production/{folder}/"
    for rel in sorted({f for f in files if f.startswith(prefix)}, key=walk_order):
        path = root / rel
        if not any(part.startswith(".") for part in rel.split("/")) and os.path.lexists(path) \
                and not os.path.isdir(path):
            yield path


def _read_json(path: Path, rel: str) -> Any:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidConfig("", f"file is {size} bytes, more than the {MAX_FILE_BYTES} a compiled config may have")
    if size == 0:
        raise InvalidConfig("", "file is empty")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidConfig("", f"file is not UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidConfig("", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise InvalidConfig("", "JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal longer than Python's int conversion limit
        raise InvalidConfig("", f"invalid JSON: {e}") from None
    if _depth_exceeds(data, MAX_NESTING):
        raise InvalidConfig("", f"JSON nested more than {MAX_NESTING} levels deep")
    return data


def compiler_name(rel: str) -> tuple[str, str] | None:
    """``(team, metaData.name)`` the compiler gives the file at ``rel``
    (``production/<kind>/<team>/<name after "team.">``), or ``None`` for a path it never writes."""
    parts = rel.split("/")
    if len(parts) != 4 or parts[0] != "production" or parts[1] not in KINDS:
        return None
    return parts[2], f"{parts[2]}.{parts[3]}"


def load_config_file(root: Path, path: Path, rel: str, parse: Callable[[_Reader, str], Any]) -> Any:
    """One compiled file under ``production/``, checked against its path; raises :class:`InvalidConfig`."""
    # The path becomes a spark-submit argument: a file name must be as plain as a config name.
    bad = [part for part in Path(rel).parts if not _FILE_PART.fullmatch(part) or part.startswith("-")]
    if bad:
        raise InvalidConfig("", f"file name {bad[0]!r} is not allowed: path parts must match {_FILE_PART.pattern}")
    if not path.resolve().is_relative_to(root):
        raise InvalidConfig("", "is a symlink to a file outside the repo")
    if not path.is_file():
        raise InvalidConfig("", "is not a regular file")
    conf = load_file(path, rel, parse)
    # The compiler's path is authoritative: it writes production/<kind>/<team>/<name after "team.">.
    # A copy elsewhere (a stray backup, a hand-made file) must not take a name from the real one.
    expected = compiler_name(rel)
    if expected is None:
        raise InvalidConfig("", f"the compiler never writes this path: configs live at production/<{'|'.join(KINDS)}>"
                            "/<team>/<name without the team prefix>")
    team, name = expected
    if conf.metadata.name != name:
        raise InvalidConfig("metaData.name", f"{conf.metadata.name!r} does not match the file's path: "
                                             "the compiler writes "
                                             f"{conf.metadata.name!r} to production/{rel.split('/')[1]}/"
                                             f"{conf.metadata.name.replace('.', '/', 1)}, and a file here "
                                             f"would be {name!r}")
    if conf.metadata.team != team:
        raise InvalidConfig("metaData.team", f"team {conf.metadata.team!r} does not match the file's folder {team!r}")
    return conf


def load_file(path: Path, rel: str, parse: Callable[[_Reader, str], Any]) -> Any:
    """Parse one compiled file; raises :class:`InvalidConfig` with the field path on failure."""
    data = _read_json(path, rel)
    try:
        return parse(_Reader(data, ""), rel)
    except RecursionError:
        raise InvalidConfig("", "config nested too deeply") from None


def load_repo(root: str | os.PathLike, files: Iterable[str] | None = None,
              parsed: MutableMapping[str, Any] | None = None) -> Repo:
    """The repo at ``root``: ``teams.json`` and every compiled file under ``production/``.

    ``files``: read only these files (paths relative to ``root``, ``production/<kind>/...``), e.g.
    one DAG-file shard's configs and the configs they reference; default: every file. ``parsed``: a
    per-file cache the caller keeps, path -> what loading that file gave (the config, or the
    :class:`ConfigError` of a bad file). The loader only reads an entry before parsing the file and
    stores one after; the caller decides which entries are still valid (its file stamps). The
    checks across files (teams, JoinSources, chaining cycles) run every time.
    """
    root = Path(root).resolve()
    errors: list[ConfigError] = []
    teams: dict[str, Team] = {}
    teams_json: dict[str, Any] = {}
    teams_file = root / "teams.json"
    if not teams_file.exists():
        errors.append(ConfigError("teams.json", "", f"no teams.json in {root}"))
    else:
        try:
            teams_json = _read_json(teams_file, "teams.json")
            teams = parse_teams(teams_json)
        except InvalidConfig as e:
            errors.append(ConfigError("teams.json", e.field, e.message))
            teams_json = {}

    def load_kind(folder: str, parse: Callable[[_Reader, str], Any]) -> list[Any]:
        confs = []
        for path in _files(root / "production" / folder) if files is None else _selected(root, folder, files):
            rel = path.relative_to(root).as_posix()
            conf = parsed.get(rel) if parsed is not None else None
            if conf is None:
                try:
                    conf = load_config_file(root, path, rel, parse)
                except InvalidConfig as e:
                    conf = ConfigError(rel, e.field, e.message)
                except OSError as e:
                    conf = ConfigError(rel, "", f"cannot read: {e.strerror}")
                if parsed is not None:
                    parsed[rel] = conf
            if isinstance(conf, ConfigError):
                errors.append(conf)
                continue
            if conf.metadata.team not in teams or conf.metadata.team == "default":
                errors.append(ConfigError(rel, "metaData.team", f"team {conf.metadata.team!r} is not in teams.json"))
                continue
            confs.append(conf)
        return confs

    joins = _unique(load_kind("joins", parse_join), errors)
    group_bys = _unique(load_kind("group_bys", parse_group_by), errors)
    staging_queries = _unique(load_kind("staging_queries", parse_staging_query), errors)

    # A JoinSource must name a join the repo defines: that join's DAG writes the table it reads.
    for name, gb in list(group_bys.items()):
        for i, src in enumerate(gb.sources):
            if src.kind == "joinSource" and src.join.name not in joins:
                errors.append(
                    ConfigError(gb.path, f"sources[{i}].joinSource.join.metaData.name",
                                f"join {src.join.name!r} is not in this repo's production/joins")
                )
                del group_bys[name]
                break

    _drop_chaining_cycles(joins, group_bys, errors)
    errors.sort(key=lambda e: (e.path, e.field))
    return Repo(
        root=str(root),
        teams=MappingProxyType(teams),
        teams_json=MappingProxyType(teams_json),
        joins=MappingProxyType(joins),
        group_bys=MappingProxyType(group_bys),
        errors=tuple(errors),
        staging_queries=MappingProxyType(staging_queries),
    )


def _drop_chaining_cycles(joins: dict[str, JoinConf], group_bys: dict[str, GroupByConf],
                          errors: list[ConfigError]) -> None:
    """A chained GroupBy whose parent join (transitively) uses that GroupBy as a join part can never
    run: each would wait for the other's output."""

    def parents(gb_name: str) -> list[str]:
        gb = group_bys.get(gb_name)
        return [s.join.name for s in gb.sources if s.join is not None] if gb else []  # the joinSources

    def reaches(join_name: str, target: str, seen: set[str]) -> bool:
        join = joins.get(join_name)
        if join is None or join_name in seen:
            return False
        seen.add(join_name)
        for part in join.join_parts:
            if part.group_by.name == target:
                return True
            if any(reaches(p, target, seen) for p in parents(part.group_by.name)):
                return True
        return False

    for name in list(group_bys):
        gb = group_bys[name]
        for i, src in enumerate(gb.sources):
            if src.join is not None and reaches(src.join.name, name, set()):  # a joinSource
                errors.append(ConfigError(gb.path, f"sources[{i}].joinSource.join.metaData.name",
                                          f"chaining cycle: join {src.join.name!r} depends on this GroupBy {name!r}"))
                del group_bys[name]
                break


def _unique(confs: list[Any], errors: list[ConfigError]) -> dict[str, Any]:
    """Two files claiming one ``metaData.name`` would fight over one table: both are rejected.
    (Only reachable through a path the name check let through, i.e. never for compiler output.)"""
    by_name: dict[str, list[Any]] = defaultdict(list)
    for c in confs:
        by_name[c.name].append(c)
    out = {}
    for name, same in by_name.items():
        if len(same) == 1:
            out[name] = same[0]
            continue
        paths = [c.path for c in same]
        for c in same:
            others = ", ".join(p for p in paths if p != c.path)
            errors.append(ConfigError(c.path, "metaData.name", f"name {name!r} is also used by {others}"))
    return out
