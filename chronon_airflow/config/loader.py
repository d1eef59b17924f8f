"""Read a compiled Chronon repo (``teams.json`` + ``production/``) into typed objects.

Pure: no Airflow import. A bad file becomes a :class:`ConfigError` beside the good configs and
never stops the rest from loading. Staging queries (``production/staging_queries``) are skipped:
CHIP-9 orchestration does not schedule them.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import defaultdict
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from chronon_airflow.config.model import (
    Aggregation,
    ConfigError,
    Dependency,
    Derivation,
    GroupByConf,
    JoinConf,
    JoinPart,
    MetaData,
    Model,
    ModelTransform,
    ModelTransforms,
    Query,
    Repo,
    SchemaField,
    Source,
    Team,
    Window,
)

# Names become DAG ids, task ids and table names: keep them to what all three accept.
# No leading '.' or '-': a name must never read as a relative path ("..") or a command-line option.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
# Model backends name an Airflow connection (``chronon_backend_<name>``). Backends and teams become
# DAG tags, which Airflow caps at 100 characters (a longer one would fail the whole DAG file).
BACKEND_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
TABLE_RE = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
_SPEC_RE = re.compile(
    r"^(?P<table>[A-Za-z0-9_]+\.[A-Za-z0-9_]+)/(?P<col>[A-Za-z_][A-Za-z0-9_]*)="
    r"\{\{\s*(?:ds|macros\.ds_add\(\s*ds\s*,\s*(?P<lag>-?\d+)\s*\))\s*\}\}"
    r"(?P<sub>(?:/[A-Za-z0-9_]+=[A-Za-z0-9_-]+)*)$"
)
_FILE_PART = re.compile(r"[A-Za-z0-9_.-]{1,200}")
MIN_DATE, MAX_DATE = dt.date(1970, 1, 1), dt.date(2200, 12, 31)
# Past this size a compiled file is not a real config (the biggest upstream joins are ~1 MB).
MAX_FILE_BYTES = 16 * 1024 * 1024
# Real compiled configs nest ~16 levels; far deeper JSON would hit Python's recursion limit later
# (deep copies, serialization) in a deeper call stack than the loader's and fail the DAG file.
MAX_NESTING = 100
SCHEDULE_RE = re.compile(r"^(@[a-z]+|[0-9*/,\- ]+)$")
# Presets the renderer maps onto a cron timetable, plus "@never" (manual only).
SCHEDULE_PRESETS = frozenset({"@never", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"})


class Invalid(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(d))


class _Reader:
    """Typed access into one JSON object that reports the dotted field path on failure."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str):
        if not isinstance(data, dict):
            raise Invalid(path, f"expected an object, got {_type(data)}")
        self.data = data
        self.path = path

    def _f(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def obj(self, key: str, required: bool = True) -> "_Reader | None":
        value = self.data.get(key)
        if value is None:
            if required:
                raise Invalid(self._f(key), "is required")
            return None
        return _Reader(value, self._f(key))

    def str(self, key: str, required: bool = True, pattern: re.Pattern | None = None, what: str = "") -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise Invalid(self._f(key), "is required")
            return None
        if not isinstance(value, str):
            raise Invalid(self._f(key), f"expected a string, got {_type(value)}")
        if pattern is not None and not pattern.fullmatch(value):  # fullmatch: "$" would allow a final "\n"
            raise Invalid(self._f(key), f"{value!r} is not a valid {what or 'value'} (allowed: {pattern.pattern})")
        return value

    def int(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise Invalid(self._f(key), "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(self._f(key), f"expected an integer, got {_type(value)}")
        return value

    def flag(self, key: str) -> bool:
        """thrift bool: compiled as 0/1 (true/false accepted too)."""
        value = self.data.get(key)
        if value is None:
            return False
        if value in (0, 1) and not isinstance(value, float):
            return bool(value)
        raise Invalid(self._f(key), f"expected 0 or 1, got {value!r}")

    def date(self, key: str) -> str | None:
        value = self.str(key, required=False)
        if value is not None:
            _check_date(value, self._f(key))
        return value

    def list(self, key: str) -> list[tuple[str, Any]]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise Invalid(self._f(key), f"expected a list, got {_type(value)}")
        return [(f"{self._f(key)}[{i}]", v) for i, v in enumerate(value)]

    def str_list(self, key: str) -> tuple[str, ...]:
        out = []
        for path, v in self.list(key):
            if not isinstance(v, str):
                raise Invalid(path, f"expected a string, got {_type(v)}")
            out.append(v)
        return tuple(out)

    def str_map(self, key: str) -> Mapping[str, str]:
        value = self.data.get(key)
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            raise Invalid(self._f(key), f"expected an object, got {_type(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise Invalid(f"{self._f(key)}.{k}", f"expected a string, got {_type(v)}")
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
    """Whether ``data`` nests more than ``limit`` lists/objects deep (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def _check_date(value: str, field: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(field, f"{value!r} is not a YYYY-MM-DD date") from None
    if len(value) != 10 or not (MIN_DATE <= day <= MAX_DATE):
        raise Invalid(field, f"{value!r} is outside {MIN_DATE}..{MAX_DATE}")
    return day


# --- pieces ---------------------------------------------------------------------------------


def parse_dependency(text: Any, field: str) -> Dependency:
    if not isinstance(text, str):
        raise Invalid(field, f"expected a JSON string, got {_type(text)}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Invalid(field, f"is not valid JSON: {e.msg}") from None
    r = _Reader(data, field)
    spec = r.str("spec")
    m = _SPEC_RE.fullmatch(spec)
    if not m:
        raise Invalid(
            f"{field}.spec",
            f"{spec!r} is not a partition spec of the form 'namespace.table/ds={{{{ ds }}}}' "
            "(or '{{ macros.ds_add(ds, -N) }}')",
        )
    lag = -int(m.group("lag")) if m.group("lag") else 0
    if lag < 0 or lag > 3650:
        raise Invalid(f"{field}.spec", f"lag of {lag} days is out of range 0..3650")
    return Dependency(
        name=r.str("name", required=False) or f"wait_for_{m.group('table')}",
        spec=spec,
        table=m.group("table"),
        partition_column=m.group("col"),
        subpartition=m.group("sub").lstrip("/"),
        lag_days=lag,
        start=r.date("start"),
        end=r.date("end"),
    )


def parse_metadata(r: _Reader) -> MetaData:
    custom_raw = r.data.get("customJson")
    custom: dict[str, Any] = {}
    if custom_raw is not None:
        if not isinstance(custom_raw, str):
            raise Invalid(r._f("customJson"), f"expected a JSON string, got {_type(custom_raw)}")
        try:
            custom = json.loads(custom_raw) if custom_raw.strip() else {}
        except json.JSONDecodeError as e:
            raise Invalid(r._f("customJson"), f"is not valid JSON: {e.msg}") from None
        if not isinstance(custom, dict):
            raise Invalid(r._f("customJson"), "must encode a JSON object")
    env_map = {}
    modes = r.obj("modeToEnvMap", required=False)
    if modes is not None:
        for mode in modes.data:
            env_map[mode] = modes.str_map(mode)
    schedule = r.str("offlineSchedule", required=False) or "@daily"
    if not SCHEDULE_RE.fullmatch(schedule) or not _valid_schedule(schedule):
        raise Invalid(r._f("offlineSchedule"), f"{schedule!r} is not a cron expression or @preset "
                                               f"({', '.join(sorted(SCHEDULE_PRESETS))})")
    return MetaData(
        name=r.str("name", pattern=NAME_RE, what="name"),
        team=r.str("team", pattern=IDENT_RE, what="team name"),
        output_namespace=r.str("outputNamespace", required=False, pattern=IDENT_RE, what="namespace"),
        online=r.flag("online"),
        production=r.flag("production"),
        offline_schedule=schedule,
        dependencies=tuple(parse_dependency(v, p) for p, v in r.list("dependencies")),
        custom_json=_frozen(custom),
        mode_to_env_map=_frozen(env_map),
        table_properties=r.str_map("tableProperties"),
        description=r.str("description", required=False),
    )


def parse_query(r: _Reader | None) -> Query:
    if r is None:
        return Query(MappingProxyType({}), (), None, None, None)
    return Query(
        selects=r.str_map("selects"),
        wheres=r.str_list("wheres"),
        start_partition=r.date("startPartition"),
        end_partition=r.date("endPartition"),
        time_column=r.str("timeColumn", required=False),
    )


def parse_source(r: _Reader) -> Source:
    kinds = [k for k in ("events", "entities", "joinSource") if r.has(k)]
    if len(kinds) != 1:
        raise Invalid(r.path, "must have exactly one of events, entities, joinSource")
    kind = kinds[0]
    s = r.obj(kind)
    query = parse_query(s.obj("query", required=False))
    if kind == "events":
        return Source(kind, query, table=s.str("table", pattern=TABLE_RE, what="table"), topic=s.str("topic", required=False))
    if kind == "entities":
        return Source(
            kind,
            query,
            table=s.str("snapshotTable", pattern=TABLE_RE, what="table"),
            mutation_table=s.str("mutationTable", required=False, pattern=TABLE_RE, what="table"),
            mutation_topic=s.str("mutationTopic", required=False),
        )
    join = parse_join(s.obj("join"), path="")
    return Source(kind, query, join=join)


def parse_group_by(r: _Reader, path: str) -> GroupByConf:
    aggs = []
    for p, a in r.list("aggregations"):
        ar = _Reader(a, p)
        windows = tuple(
            Window(length=_Reader(w, wp).int("length"), time_unit=_check_unit(_Reader(w, wp)))
            for wp, w in ar.list("windows")
        )
        op = ar.int("operation")
        if op < 0 or op > 18:
            raise Invalid(ar._f("operation"), f"unknown operation {op}")
        aggs.append(Aggregation(ar.str("inputColumn"), op, windows, ar.str_map("argMap")))
    return GroupByConf(
        path=path,
        metadata=parse_metadata(r.obj("metaData")),
        sources=tuple(parse_source(_Reader(v, p)) for p, v in r.list("sources")),
        key_columns=r.str_list("keyColumns"),
        aggregations=tuple(aggs),
        backfill_start_date=r.date("backfillStartDate"),
        raw=r.data,
    )


def _check_unit(w: _Reader) -> int:
    unit = w.int("timeUnit")
    if unit not in (0, 1):
        raise Invalid(w._f("timeUnit"), f"unknown time unit {unit} (0 HOURS, 1 DAYS)")
    if w.int("length") <= 0:
        raise Invalid(w._f("length"), "window length must be positive")
    return unit


def _schema(r: _Reader, key: str) -> tuple[SchemaField, ...]:
    s = r.obj(key)
    fields = []
    for p, v in s.list("params"):
        fr = _Reader(v, p)
        dtype = fr.obj("dataType")
        fields.append(SchemaField(fr.str("name"), dtype.int("kind"), _frozen(dtype.data)))
    if not fields:
        raise Invalid(s._f("params"), "a model schema needs at least one field")
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
        raise Invalid(r._f("transforms"), "modelTransforms needs at least one transform")
    names = [t.model.name for t in transforms]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise Invalid(f"{r._f('transforms')}[{i}].model.metaData.name", f"model {n!r} appears twice in this join")
    return ModelTransforms(tuple(transforms), r.str_list("passthroughFields"))


def parse_join(r: _Reader, path: str) -> JoinConf:
    parts = []
    for p, v in r.list("joinParts"):
        jr = _Reader(v, p)
        gb = parse_group_by(jr.obj("groupBy"), path="")
        parts.append(JoinPart(gb, jr.str_map("keyMapping"), jr.str("prefix", required=False, pattern=IDENT_RE, what="prefix")))
    derivations = []
    for p, v in r.list("derivations"):
        dr = _Reader(v, p)
        derivations.append(Derivation(dr.str("name"), dr.str("expression")))
    mt = r.obj("modelTransforms", required=False)
    left = parse_source(r.obj("left"))
    if left.kind == "joinSource":
        raise Invalid(r._f("left"), "a join's left must be events or entities")
    metadata = parse_metadata(r.obj("metaData"))
    transforms = parse_model_transforms(mt) if mt is not None else None
    conf = JoinConf(
        path=path,
        metadata=metadata,
        left=left,
        join_parts=tuple(parts),
        derivations=tuple(derivations),
        model_transforms=transforms,
        raw=r.data,
    )
    chosen = metadata.custom_json.get("model_transform_backend")
    if chosen is not None and chosen not in conf.backends:
        raise Invalid(r._f("metaData.customJson.model_transform_backend"),
                      f"{chosen!r} is not the backend of any of this join's models ({', '.join(conf.backends) or 'none'})")
    return conf


def parse_join_thrift(data: Any) -> JoinConf:
    """A join from its thrift-JSON dict (e.g. received over the wire); raises :class:`Invalid`."""
    return parse_join(_Reader(data, ""), path="")


# --- teams ------------------------------------------------------------------------------------


def parse_teams(data: Any) -> dict[str, Team]:
    r = _Reader(data, "")
    default = data.get("default") if isinstance(data.get("default"), dict) else {}
    teams = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise Invalid(name, f"expected an object, got {_type(entry)}")
        merged = {**default, **entry}
        tr = _Reader(merged, name)
        emails = tr.data.get("maintainer_emails") or ()
        if isinstance(emails, str):
            emails = (emails,)
        if not isinstance(emails, (list, tuple)) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise Invalid(f"{name}.maintainer_emails", "expected a list of e-mail addresses")
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


def _read_json(path: Path, rel: str) -> Any:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise Invalid("", f"file is {size} bytes, more than the {MAX_FILE_BYTES} a compiled config may have")
    if size == 0:
        raise Invalid("", "file is empty")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid("", f"file is not UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Invalid("", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise Invalid("", "JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal longer than Python's int conversion limit
        raise Invalid("", f"invalid JSON: {e}") from None
    if _depth_exceeds(data, MAX_NESTING):
        raise Invalid("", f"JSON nested more than {MAX_NESTING} levels deep")
    return data


def load_file(path: Path, rel: str, parse: Callable[[_Reader, str], Any]) -> Any:
    """Parse one compiled file; raises :class:`Invalid` with the field path on failure."""
    data = _read_json(path, rel)
    try:
        return parse(_Reader(data, ""), rel)
    except RecursionError:
        raise Invalid("", "config nested too deeply") from None


def load_repo(root: str | os.PathLike) -> Repo:
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
        except Invalid as e:
            errors.append(ConfigError("teams.json", e.field, e.message))
            teams_json = {}

    def load_kind(folder: str, parse: Callable[[_Reader, str], Any]) -> list[Any]:
        confs = []
        for path in _files(root / "production" / folder):
            rel = path.relative_to(root).as_posix()
            try:
                # The path becomes a spark-submit argument: a file name must be as plain as a config name.
                bad = [part for part in Path(rel).parts if not _FILE_PART.fullmatch(part) or part.startswith("-")]
                if bad:
                    raise Invalid("", f"file name {bad[0]!r} is not allowed: path parts must match {_FILE_PART.pattern}")
                if not path.resolve().is_relative_to(root):
                    raise Invalid("", "is a symlink to a file outside the repo")
                if not path.is_file():
                    raise Invalid("", "is not a regular file")
                conf = load_file(path, rel, parse)
            except Invalid as e:
                errors.append(ConfigError(rel, e.field, e.message))
                continue
            except OSError as e:
                errors.append(ConfigError(rel, "", f"cannot read: {e.strerror}"))
                continue
            if conf.metadata.team not in teams or conf.metadata.team == "default":
                errors.append(ConfigError(rel, "metaData.team", f"team {conf.metadata.team!r} is not in teams.json"))
                continue
            confs.append(conf)
        return confs

    joins = _unique(load_kind("joins", parse_join), errors)
    group_bys = _unique(load_kind("group_bys", parse_group_by), errors)

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
    )


def _drop_chaining_cycles(joins: dict[str, JoinConf], group_bys: dict[str, GroupByConf], errors: list[ConfigError]) -> None:
    """A chained GroupBy whose parent join (transitively) uses that GroupBy as a join part can never
    run: each would wait for the other's output."""

    def parents(gb_name: str) -> list[str]:
        gb = group_bys.get(gb_name)
        return [s.join.name for s in gb.sources if s.kind == "joinSource"] if gb else []

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
            if src.kind == "joinSource" and reaches(src.join.name, name, set()):
                errors.append(ConfigError(gb.path, f"sources[{i}].joinSource.join.metaData.name",
                                          f"chaining cycle: join {src.join.name!r} depends on this GroupBy {name!r}"))
                del group_bys[name]
                break


def _unique(confs: list[Any], errors: list[ConfigError]) -> dict[str, Any]:
    """Two files claiming one ``metaData.name`` would fight over one table: both are rejected."""
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
