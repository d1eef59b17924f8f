"""The bad-config corpus: broken and hostile compiled files, generated deterministically.

:func:`build_corpus_repo` copies the project's ``configs/`` (the valid configs) and adds every case
at the compiler's path of its name, ``production/{joins,group_bys,staging_queries}/search/hardening_<case>.v1``
(a few cases are about paths and sit elsewhere). Each :class:`Case` says what the
loader must make of it: ``errors`` (path, field, message fragment) it must report, or the DAG ids
it must still generate when the file is valid but hostile.

Hostile strings share markers the tests search every output for: ``JINJA`` renders to
``JINJA_RENDERED`` if anything ever evaluates it; the shell payloads would create ``PWNED_FILES``.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import CONFIGS

QR = "production/joins/search/query_relevance.v1"
QES = "production/group_bys/search/query_embedding_stats.v1"
ITEM_CLICKS = "production/group_bys/search/item_clicks.v1"

JINJA = "{{ 7777*7 }}"
JINJA_RENDERED = "54439"
PWNED_DIR = Path("/tmp")
PWNED_FILES = [PWNED_DIR / "chronon-hardening-pwned-1", PWNED_DIR / "chronon-hardening-pwned-2",
               PWNED_DIR / "chronon-hardening-pwned-3", Path.cwd() / "chronon-hardening-pwned-4"]
SHELL_SUBST = f"$(touch {PWNED_FILES[0]})"
SHELL_BACKTICK = f"`touch {PWNED_FILES[1]}`"
SHELL_SEMICOLON = f"x; touch {PWNED_FILES[2]}"
HOSTILE_FILE_NAME = "$(touch chronon-hardening-pwned-4)"  # a file name cannot hold "/", cwd-relative
SECRET_API_KEY = "sk-live-HARDENING-5150"
SECRET_TOKEN = "tok-HARDENING-8086"
SECRET_PASSWORD = "pw-HARDENING-6502"
SECRETS = [SECRET_API_KEY, SECRET_TOKEN, SECRET_PASSWORD]
HUGE_BYTES = 17 * 1024 * 1024  # over the loader's 16 MiB limit


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    # rel path -> file content (bytes), or a callable that creates the file at the given absolute path
    files: dict[str, bytes | Callable[[Path], None]]
    # (rel path, field, message fragment) the loader must report; empty for a valid-but-hostile file
    errors: tuple[tuple[str, str, str], ...] = ()
    # DAG ids that must exist (valid-but-hostile files)
    dag_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not self.errors


def _load(rel: str) -> dict:
    return json.loads((CONFIGS / rel).read_text())


def _j(data) -> bytes:
    return json.dumps(data, indent=1).encode()


def join_path(case_id: str, team: str = "search") -> str:
    """The compiler's path of :func:`hname` ``(case_id)``: the name check passes, the case's own
    problem is what the loader reports."""
    return f"production/joins/{team}/hardening_{case_id}.v1"


def gb_path(case_id: str) -> str:
    return f"production/group_bys/search/hardening_{case_id}.v1"


def hname(case_id: str) -> str:
    return f"search.hardening_{case_id}.v1"


def base_join(case_id: str) -> dict:
    """query_relevance.v1 under a new name (its own tables, DAGs and idempotency keys)."""
    j = _load(QR)
    j["metaData"]["name"] = hname(case_id)
    return j


def base_gb(case_id: str) -> dict:
    g = _load(ITEM_CLICKS)
    g["metaData"]["name"] = hname(case_id)
    return g


def _model(j: dict, i: int = 0) -> dict:
    return j["modelTransforms"]["transforms"][i]["model"]


def _mutated(case_id: str, mutate: Callable[[dict], object], base: Callable[[str], dict] = base_join) -> bytes:
    data = base(case_id)
    mutate(data)
    return _j(data)


def _dep(j: dict, **changes) -> None:
    dep = json.loads(j["metaData"]["dependencies"][0])
    dep.update(changes)
    j["metaData"]["dependencies"][0] = json.dumps(dep)


def _set_name(value):
    return lambda j: j["metaData"].__setitem__("name", value)


def _symlink_outside(path: Path) -> None:
    os.symlink("/etc/passwd", path)


def _fifo(path: Path) -> None:
    os.mkfifo(path)  # reading it would block the DAG file forever


def _huge(path: Path) -> None:
    with path.open("wb") as f:  # sparse: costs no disk
        f.truncate(HUGE_BYTES)


def _error_case(case_id: str, description: str, content, fld: str, fragment: str, kind: str = "join") -> Case:
    rel = join_path(case_id) if kind == "join" else gb_path(case_id)
    return Case(case_id, description, {rel: content}, ((rel, fld, fragment),))


def _valid_case(case_id: str, description: str, content: bytes, dag_ids: tuple[str, ...] | None = None,
                tags: tuple[str, ...] = ()) -> Case:
    return Case(case_id, description, {join_path(case_id): content},
                dag_ids=dag_ids or (f"chronon.join_backfill.{hname(case_id)}",), tags=tags)


def _cycle_files() -> dict[str, bytes]:
    """join J uses GroupBy G as a join part; G reads J's output through a JoinSource."""
    jname, gname = hname("cycle_join"), hname("cycle_gb")
    g = _load(QES)
    g["metaData"]["name"] = gname
    embedded = base_join("cycle_join")
    embedded["joinParts"] = []  # what G embeds: J itself (its parts would embed G again)
    g["sources"][0]["joinSource"]["join"] = embedded
    j = base_join("cycle_join")
    j["joinParts"] = j["joinParts"][:1]
    j["joinParts"][0] = {**j["joinParts"][0], "groupBy": copy.deepcopy(g)}
    j["metaData"]["name"] = jname
    return {join_path("cycle_join"): _j(j), gb_path("cycle_gb"): _j(g)}


def _join_source_missing() -> bytes:
    g = _load(QES)
    g["metaData"]["name"] = hname("join_source_missing")
    g["sources"][0]["joinSource"]["join"]["metaData"]["name"] = "search.not_in_this_repo.v1"
    return _j(g)


def cases() -> list[Case]:
    valid_text = _j(base_join("truncated"))
    out = [
        # -- unreadable files ---------------------------------------------------------------
        _error_case("empty", "empty file (0 bytes)", b"", "", "file is empty"),
        _error_case("whitespace", "only whitespace", b"  \n\t \n", "", "invalid JSON"),
        _error_case("truncated", "valid JSON cut in the middle", valid_text[: len(valid_text) // 2], "",
                    "invalid JSON"),
        _error_case("garbage", "not JSON at all", b"{not json at all", "", "invalid JSON"),
        _error_case("top_level_list", "a JSON list instead of an object", b"[1, 2, 3]", "", "expected an object"),
        _error_case("top_level_null", "JSON null", b"null", "", "expected an object, got null"),
        _error_case("top_level_string", "a JSON string", b'"search.query_relevance.v1"', "", "expected an object"),
        _error_case("non_utf8", "Latin-1 bytes in a name", valid_text.replace(b"hardening_truncated",
                                                                              b"hardening_\xe9\xff"), "",
                    "not UTF-8"),
        _error_case("utf8_bom", "UTF-8 byte order mark", b"\xef\xbb\xbf" + valid_text, "", "invalid JSON"),
        _error_case("huge_file", f"a {HUGE_BYTES} byte file", _huge, "", "more than the"),
        _error_case("deep_nesting_stack", "100000 nested lists (blows the parser's stack)", b"[" * 100_000, "",
                    "nested too deeply"),
        _error_case("deep_nesting_field", "an unknown field nested 500 levels deep",
                    _mutated("deep_nesting_field", lambda j: j.__setitem__("extra", json.loads("[" * 500 + "]" * 500))),
                    "", "nested more than 100 levels"),
        _error_case("huge_integer", "an integer literal of 5000 digits",
                    b'{"metaData": {"name": "x", "team": "search", "online": ' + b"9" * 5000 + b"}}", "",
                    "invalid JSON"),
        _error_case("symlink_outside", "a symlink to /etc/passwd (path traversal)", _symlink_outside, "",
                    "symlink to a file outside the repo"),
        _error_case("fifo", "a named pipe (reading would hang)", _fifo, "", "not a regular file"),
        # -- wrong types / missing fields -----------------------------------------------------
        _error_case("nan_flag", "NaN where a 0/1 flag belongs",
                    _j(base_join("nan_flag")).replace(b'"online": 1', b'"online": NaN', 1),
                    "metaData.online",
                    "expected 0 or 1"),
        _error_case("missing_metadata", "no metaData", _mutated("missing_metadata", lambda j: j.pop("metaData")),
                    "metaData", "is required"),
        _error_case("missing_name", "no metaData.name", _mutated("missing_name", lambda j: j["metaData"].pop("name")),
                    "metaData.name", "is required"),
        _error_case("missing_team", "no metaData.team", _mutated("missing_team", lambda j: j["metaData"].pop("team")),
                    "metaData.team", "is required"),
        Case("unknown_team", "a team teams.json does not define",
             {join_path("unknown_team", "nosuchteam"): _mutated("unknown_team", lambda j: j["metaData"].update(
                 team="nosuchteam", name="nosuchteam.hardening_unknown_team.v1"))},
             ((join_path("unknown_team", "nosuchteam"), "metaData.team", "not in teams.json"),)),
        Case("default_team", "the teams.json 'default' entry as a team",
             {join_path("default_team", "default"): _mutated("default_team", lambda j: j["metaData"].update(
                 team="default", name="default.hardening_default_team.v1"))},
             ((join_path("default_team", "default"), "metaData.team", "not in teams.json"),)),
        _error_case("team_not_its_folder", "metaData.team differs from the team folder the file is in",
                    _mutated("team_not_its_folder", lambda j: j["metaData"].__setitem__("team", "risk")),
                    "metaData.team", "does not match the file's folder"),
        _error_case("name_wrong_type", "metaData.name is a number", _mutated("name_wrong_type", _set_name(42)),
                    "metaData.name", "expected a string"),
        _error_case("transforms_wrong_type", "modelTransforms.transforms is an object",
                    _mutated("transforms_wrong_type", lambda j: j["modelTransforms"].__setitem__("transforms", {})),
                    "modelTransforms.transforms", "expected a list"),
        _error_case("no_transforms", "modelTransforms with no transform",
                    _mutated("no_transforms", lambda j: j["modelTransforms"].__setitem__("transforms", [])),
                    "modelTransforms.transforms", "at least one transform"),
        _error_case("missing_model_backend", "inferenceSpec without modelBackend",
                    _mutated("missing_model_backend", lambda j: _model(j)["inferenceSpec"].pop("modelBackend")),
                    "modelTransforms.transforms[0].model.inferenceSpec.modelBackend", "is required"),
        _error_case("params_wrong_type", "a modelBackendParams value that is a number",
                    _mutated("params_wrong_type",
                             lambda j: _model(j)["inferenceSpec"]["modelBackendParams"].__setitem__(
                                 "model_version", 3)),
                    "modelTransforms.transforms[0].model.inferenceSpec.modelBackendParams.model_version",
                    "expected a string"),
        _error_case("duplicate_model", "the same model twice in one join",
                    _mutated("duplicate_model", lambda j: j["modelTransforms"]["transforms"].append(
                        copy.deepcopy(j["modelTransforms"]["transforms"][0]))),
                    "modelTransforms.transforms[1].model.metaData.name", "appears twice"),
        _error_case("left_join_source", "a join whose left side is a JoinSource",
                    _mutated("left_join_source",
                             lambda j: j.__setitem__("left", {"joinSource": {"join": base_join("x")}})),
                    "left", "must be events or entities"),
        _error_case("bad_prefix", "a transform prefix that is not an identifier",
                    _mutated("bad_prefix",
                             lambda j: j["modelTransforms"]["transforms"][0].__setitem__("prefix", "qe-1")),
                    "modelTransforms.transforms[0].prefix", "not a valid prefix"),
        _error_case("unknown_operation", "an aggregation operation that does not exist",
                    _mutated("unknown_operation", lambda g: g["aggregations"][0].__setitem__("operation", 99), base_gb),
                    "aggregations[0].operation", "unknown operation 99", kind="gb"),
        _error_case("negative_window", "a window of -7 days",
                    _mutated("negative_window", lambda g: g["aggregations"][0]["windows"][0].__setitem__("length", -7),
                             base_gb),
                    "aggregations[0].windows[0].length", "must be positive", kind="gb"),
        # -- backends ------------------------------------------------------------------------
        _error_case("backend_shell", "a model backend name with shell metacharacters",
                    _mutated("backend_shell", lambda j: _model(j)["inferenceSpec"].__setitem__(
                        "modelBackend", f"reference; touch {PWNED_FILES[2]}")),
                    "modelTransforms.transforms[0].model.inferenceSpec.modelBackend", "not a valid model backend name"),
        _error_case("backend_too_long", "a 150-character backend name (Airflow caps tags at 100)",
                    _mutated("backend_too_long",
                             lambda j: _model(j)["inferenceSpec"].__setitem__("modelBackend", "b" * 150)),
                    "modelTransforms.transforms[0].model.inferenceSpec.modelBackend", "not a valid model backend name"),
        _error_case("unknown_transform_backend", "customJson.model_transform_backend names no model's backend",
                    _mutated("unknown_transform_backend", lambda j: j["metaData"].__setitem__(
                        "customJson", json.dumps({"model_transform_backend": "nosuchbackend"}))),
                    "metaData.customJson.model_transform_backend", "not the backend of any"),
        # -- names ---------------------------------------------------------------------------
        _error_case("name_shell_subst", "a name with $(...)", _mutated("name_shell_subst", _set_name(SHELL_SUBST)),
                    "metaData.name", "not a valid name"),
        _error_case("name_backticks", "a name with backticks", _mutated("name_backticks", _set_name(SHELL_BACKTICK)),
                    "metaData.name", "not a valid name"),
        _error_case("name_semicolon", "a name with ;", _mutated("name_semicolon", _set_name(SHELL_SEMICOLON)),
                    "metaData.name", "not a valid name"),
        _error_case("name_jinja", "a name with Jinja", _mutated("name_jinja", _set_name(f"search.{JINJA}.v1")),
                    "metaData.name", "not a valid name"),
        _error_case("name_path_traversal", "a name ../../etc/passwd",
                    _mutated("name_path_traversal", _set_name("../../etc/passwd")), "metaData.name",
                    "not a valid name"),
        _error_case("name_dotdot", "the name ..", _mutated("name_dotdot", _set_name("..")), "metaData.name",
                    "not a valid name"),
        _error_case("name_option", "a name that reads as a command-line option",
                    _mutated("name_option", _set_name("--conf=spark.x")), "metaData.name", "not a valid name"),
        _error_case("name_newline", "a name ending in a newline",
                    _mutated("name_newline", _set_name(hname("name_newline") + "\n")), "metaData.name",
                    "not a valid name"),
        _error_case("name_too_long", "a 201-character name", _mutated("name_too_long", _set_name("a" * 201)),
                    "metaData.name", "not a valid name"),
        _error_case("name_homoglyph", "a name with a Cyrillic 'е'",
                    _mutated("name_homoglyph", _set_name("s\u0435arch.hardening_homoglyph.v1")), "metaData.name",
                    "not a valid name"),
        _error_case("model_name_jinja", "a model name with Jinja",
                    _mutated("model_name_jinja", lambda j: _model(j)["metaData"].__setitem__("name", JINJA)),
                    "modelTransforms.transforms[0].model.metaData.name", "not a valid model name"),
        _error_case("dependency_spec_jinja", "a dependency spec with an arbitrary Jinja expression",
                    _mutated("dependency_spec_jinja", lambda j: _dep(j, spec=f"search_data.search_events/ds={JINJA}")),
                    "metaData.dependencies[0].spec", "not a partition spec"),
        # -- schedules and dates -------------------------------------------------------------
        _error_case("schedule_shell", "offlineSchedule with shell metacharacters",
                    _mutated("schedule_shell", lambda j: j["metaData"].__setitem__("offlineSchedule",
                                                                                  f"@daily; touch {PWNED_FILES[2]}")),
                    "metaData.offlineSchedule", "not a cron expression"),
        _error_case("schedule_bad_cron", "an out-of-range cron expression (Airflow would reject the DAG file)",
                    _mutated("schedule_bad_cron",
                             lambda j: j["metaData"].__setitem__("offlineSchedule", "99 99 99 99 99")),
                    "metaData.offlineSchedule", "not a cron expression"),
        _error_case("schedule_unknown_preset", "an @preset Airflow does not know",
                    _mutated("schedule_unknown_preset",
                             lambda j: j["metaData"].__setitem__("offlineSchedule", "@sometimes")),
                    "metaData.offlineSchedule", "not a cron expression"),
        _error_case("date_far_future", "a dependency start in year 9999",
                    _mutated("date_far_future", lambda j: _dep(j, start="9999-12-31")),
                    "metaData.dependencies[0].start", "is outside"),
        _error_case("date_ancient", "a dependency end in year 1",
                    _mutated("date_ancient", lambda j: _dep(j, end="0001-01-01")),
                    "metaData.dependencies[0].end", "is outside"),
        _error_case("date_impossible", "backfillStartDate 2024-02-30",
                    _mutated("date_impossible", lambda g: g.__setitem__("backfillStartDate", "2024-02-30"), base_gb),
                    "backfillStartDate", "not a YYYY-MM-DD date", kind="gb"),
        _error_case("date_wrong_format", "startPartition 01/02/2024",
                    _mutated("date_wrong_format", lambda j: j["left"]["events"]["query"].__setitem__(
                        "startPartition", "01/02/2024")),
                    "left.events.query.startPartition", "not a YYYY-MM-DD date"),
        _error_case("dependency_lag_absurd", "a dependency lag of 100000 days",
                    _mutated("dependency_lag_absurd", lambda j: _dep(
                        j, spec="search_data.search_events/ds={{ macros.ds_add(ds, -100000) }}")),
                    "metaData.dependencies[0].spec", "out of range"),
        # -- repo-level ----------------------------------------------------------------------
        Case("duplicate_name", "a stray copy of a config beside the file at the compiler's path",
             {join_path("duplicate"): _j(base_join("duplicate")),
              join_path("duplicate_copy"): _j(base_join("duplicate"))},
             ((join_path("duplicate_copy"), "metaData.name", "does not match the file's path"),),
             # The file at the compiler's path keeps its DAG.
             dag_ids=(f"chronon.join_backfill.{hname('duplicate')}",)),
        Case("outside_the_layout", "a config in a folder the compiler never writes",
             {"production/joins/hardening/nested/cfg": _j(base_join("outside_the_layout"))},
             (("production/joins/hardening/nested/cfg", "", "never writes this path"),)),
        _error_case("join_source_missing", "a JoinSource to a join not in the repo", _join_source_missing(),
                    "sources[0].joinSource.join.metaData.name", "not in this repo", kind="gb"),
        Case("chaining_cycle", "a join using a GroupBy that reads that join's output",
             _cycle_files(), ((gb_path("cycle_gb"), "sources[0].joinSource.join.metaData.name", "chaining cycle"),),
             dag_ids=(f"chronon.join_backfill.{hname('cycle_join')}",)),
        Case("hostile_file_name", "a valid config in a file named $(touch ...)",
             {f"production/joins/search/{HOSTILE_FILE_NAME}": _j(base_join("hostile_file_name"))},
             ((f"production/joins/search/{HOSTILE_FILE_NAME}", "", "is not allowed"),)),
        # -- valid but hostile: must load, generate their DAGs, and show nothing dangerous -----
        _valid_case("secret_params", "secret-looking modelBackendParams (loaded, never shown)",
                    _mutated("secret_params", lambda j: _model(j)["inferenceSpec"]["modelBackendParams"].update(
                        {"api_key": SECRET_API_KEY, "auth_token": SECRET_TOKEN, "db_password": SECRET_PASSWORD}))),
        _valid_case("unknown_backend", "a backend with no Airflow connection (a validate warning, not an error)",
                    _mutated("unknown_backend", lambda j: _model(j)["inferenceSpec"].__setitem__(
                        "modelBackend", "nosuchbackend")), tags=("warning",)),
        _valid_case("hostile_description", "HTML, markdown links and Jinja in the description",
                    _mutated("hostile_description", lambda j: j["metaData"].__setitem__(
                        "description", f"<script>alert(1)</script> [click](javascript:alert(2)) {JINJA} "
                                       f"{SHELL_SUBST}"))),
        _valid_case("jinja_params", "Jinja and shell in modelBackendParams (sent verbatim, never rendered)",
                    _mutated("jinja_params", lambda j: _model(j)["inferenceSpec"]["modelBackendParams"].update(
                        {"note": f"{JINJA} {SHELL_SUBST}"}))),
        _valid_case("jinja_selects", "Jinja in a SQL select expression (opaque to the scheduler)",
                    _mutated("jinja_selects", lambda j: j["left"]["events"]["query"]["selects"].__setitem__(
                        "note", f"'{JINJA}'"))),
        _valid_case("hostile_dependency_name", "Jinja and shell in a dependency's name (task id sanitized)",
                    _mutated("hostile_dependency_name", lambda j: _dep(j, name=f"{JINJA} {SHELL_SUBST}"))),
        Case("staging_query_garbage", "garbage under production/staging_queries (loaded like every config)",
             {"production/staging_queries/search/hardening_garbage.v1": b"{{{ not json"},
             (("production/staging_queries/search/hardening_garbage.v1", "", "invalid JSON"),)),
        Case("hidden_file_garbage", "a hidden editor file among the joins (ignored)",
             {"production/joins/search/.garbage.swp": b"\x00\x01 not json"}),
    ]
    ids = [c.id for c in out]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return out


def build_corpus_repo(root: Path) -> list[Case]:
    """The project's configs/ plus every case. Returns the cases."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIGS / "teams.json", root / "teams.json")
    shutil.copytree(CONFIGS / "production", root / "production")
    all_cases = cases()
    for case in all_cases:
        for rel, content in case.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(path)
            else:
                path.write_bytes(content)
    return all_cases


if __name__ == "__main__":  # write the corpus somewhere to look at it: python tests/hardening/corpus.py DIR
    import sys

    built = build_corpus_repo(Path(sys.argv[1]))
    print(f"{len(built)} cases in {sys.argv[1]}")
