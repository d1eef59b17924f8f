"""The parse cache of the DAG files: what it returns equals a fresh render, a change re-parses,
re-plans and re-renders only what was built from it, every input of a DAG (compiled files,
settings, Airflow settings, code) invalidates it, and nothing about the cache can break a parse."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JOIN = "chronon.join_backfill.search.query_relevance.v1"
CHAINED = "chronon.group_by_upload.search.query_embedding_stats.v1"
UPLOAD = "chronon.metadata_upload.search"
JOIN_FILE = "production/joins/search/query_relevance.v1"


@pytest.fixture()
def repo(tmp_path, configs_repo) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(configs_repo, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


@pytest.fixture()
def counted(monkeypatch):
    """Record what is rendered and which compiled files are parsed."""
    import chronon_airflow.render as render_pkg
    from chronon_airflow.config import loader

    seen = {"rendered": [], "parsed": []}
    real_render, real_load = render_pkg._render, loader.load_config_file

    def render(planned, root, deployment):
        seen["rendered"] += [d.dag_id for d in planned]
        return real_render(planned, root, deployment)

    def load(root, path, rel, parse):
        seen["parsed"].append(rel)
        return real_load(root, path, rel, parse)

    monkeypatch.setattr(render_pkg, "_render", render)
    monkeypatch.setattr(loader, "load_config_file", load)

    def reset():
        seen["rendered"].clear()
        seen["parsed"].clear()

    seen["reset"] = reset
    return seen


def _parsed(repo) -> dict:
    """A full parse and, when it returns, what its background writer leaves (as the next parse
    sees the cache: it waits for that writer too)."""
    from chronon_airflow.render import build_dags
    from chronon_airflow.render.cache import ShardCache

    dags = build_dags(repo)
    ShardCache(repo, 0, 1).wait_for_writer()
    return dags


def _serialized(dags: dict) -> dict:
    from airflow.serialization.serialized_objects import DagSerialization

    return {k: json.dumps(DagSerialization.to_dict(d), sort_keys=True, default=str) for k, d in dags.items()}


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _schedule(value: str):
    return lambda d: d["metaData"].__setitem__("offlineSchedule", value)


def test_cached_dags_equal_a_fresh_render(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    first = _parsed(repo)
    (env,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert (env / "0-of-1.state").exists() and (env / "0-of-1.index").exists()
    assert list((env / "dags").glob("0-of-1-*.pickle")) and list((env / "files").glob("0-of-1-*.pickle"))
    second = build_dags(repo)
    assert second is not first and all(second[k] is not first[k] for k in first)
    assert _serialized(second) == _serialized(first)
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", "off")
    assert _serialized(build_dags(repo)) == _serialized(first)


def test_a_warm_parse_reads_renders_and_plans_nothing(repo, cache_dir, counted):
    from chronon_airflow.render import build_dags

    build_dags(repo)
    assert len(counted["parsed"]) == 11 and len(counted["rendered"]) == 20
    counted["reset"]()
    build_dags(repo)
    assert counted["parsed"] == [] and counted["rendered"] == []


def test_an_edit_reparses_one_file_and_rerenders_only_the_dags_built_from_it(repo, cache_dir, counted,
                                                                            monkeypatch):
    from chronon_airflow.render import build_dags

    before = _serialized(build_dags(repo))
    counted["reset"]()
    _edit(repo / JOIN_FILE, _schedule("@weekly"))
    after = build_dags(repo)
    assert counted["parsed"] == [JOIN_FILE]
    # The chained GroupBy and the team's metadata upload are re-planned (they read that file) but
    # their plan is unchanged: only the join's own DAG is rendered again.
    assert counted["rendered"] == [JOIN]
    assert after[JOIN].timetable.expression == "0 0 * * 0"
    now = _serialized(after)
    assert [k for k in now if now[k] != before[k]] == [JOIN]
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", "off")
    assert _serialized(build_dags(repo)) == now


def test_a_change_undone_finds_its_earlier_dags(repo, cache_dir, counted):
    from chronon_airflow.render import build_dags

    f = repo / JOIN_FILE
    original, st = f.read_bytes(), os.stat(f)
    build_dags(repo)
    _edit(f, _schedule("@weekly"))
    build_dags(repo)
    f.write_bytes(original)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    counted["reset"]()
    assert build_dags(repo)[JOIN].timetable.expression == "0 0 * * *"
    assert counted["rendered"] == []  # the earlier chunk of team search is read again


def test_a_new_file_and_a_removed_file(repo, cache_dir, counted):
    from chronon_airflow.render import build_dags

    build_dags(repo)
    new = repo / "production/joins/search/query_relevance.v2"
    shutil.copy(repo / JOIN_FILE, new)
    _edit(new, lambda d: d["metaData"].__setitem__("name", "search.query_relevance.v2"))
    counted["reset"]()
    dags = build_dags(repo)
    assert "chronon.join_backfill.search.query_relevance.v2" in dags
    assert set(counted["rendered"]) == {"chronon.join_backfill.search.query_relevance.v2", UPLOAD}
    new.unlink()
    counted["reset"]()
    dags = build_dags(repo)
    assert "chronon.join_backfill.search.query_relevance.v2" not in dags
    # Back to the first state: team search's chunk of then is read again.
    assert counted["parsed"] == [] and counted["rendered"] == []


def test_settings_and_code_are_part_of_the_key(repo, cache_dir, counted, monkeypatch):
    from chronon_airflow.render import build_dags, cache

    build_dags(repo)
    monkeypatch.setenv("AIRFLOW__CHRONON__SENSOR_POKE_INTERVAL", "42")
    counted["reset"]()
    dags = build_dags(repo)
    assert len(counted["rendered"]) == 20
    assert dags[JOIN].get_task("wait_for_search_data.search_events_ds").poke_interval == 42
    # Another version of the package's code: another environment folder.
    before = cache.env_fingerprint(repo.resolve())
    monkeypatch.setattr(cache, "_code_files", lambda: [("chronon_airflow/x.py", 1, 2)])
    assert cache.env_fingerprint(repo.resolve()) != before


def test_an_airflow_setting_is_part_of_the_key(repo, cache_dir, counted, monkeypatch):
    """Airflow settings the SDK reads when it builds DAGs and operators ([core], [operators], ...):
    from the environment and from airflow.cfg. Secrets and _cmd options are left out."""
    from chronon_airflow.render import build_dags, cache

    build_dags(repo)
    fp = cache.airflow_fingerprint()
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TASK_WEIGHT_RULE", "absolute")
    assert cache.airflow_fingerprint() != fp
    counted["reset"]()
    build_dags(repo)
    assert len(counted["rendered"]) == 20 and counted["parsed"] == []  # re-rendered, nothing re-parsed
    monkeypatch.delenv("AIRFLOW__CORE__DEFAULT_TASK_WEIGHT_RULE")
    for name in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__CORE__FERNET_KEY_CMD", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        monkeypatch.setenv(name, "something else")
    assert cache.airflow_fingerprint() == fp
    cfg = Path(os.environ["AIRFLOW_HOME"]) / "airflow.cfg"
    monkeypatch.setenv("AIRFLOW_CONFIG", str(cfg.with_name("test-cache-airflow.cfg")))
    cfg.with_name("test-cache-airflow.cfg").write_text("[operators]\ndefault_queue = elsewhere\n")
    try:
        assert cache.airflow_fingerprint() != fp
    finally:
        cfg.with_name("test-cache-airflow.cfg").unlink()


def test_an_airflow_setting_change_reaches_the_dags_of_a_later_parse(repo, tmp_path):
    """End to end, as two parses in two processes (operators read some settings at import)."""
    code = ("import json, sys\nfrom chronon_airflow.render import build_dags\n"
            "dags = build_dags(sys.argv[1])\n"
            f"print(json.dumps(sorted({{str(t.weight_rule) for t in dags[{JOIN!r}].tasks}})))\n")
    env = dict(os.environ, AIRFLOW__CHRONON__PLAN_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("_AIRFLOW_PARSING_CONTEXT_DAG_ID", None)

    def rules(**extra: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code, str(repo)], env=dict(env, **extra), capture_output=True,
                             text=True, timeout=300, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    default = rules()
    assert rules(AIRFLOW__CORE__DEFAULT_TASK_WEIGHT_RULE="absolute") != default
    assert rules() == default


def test_content_stamps_for_deploys_that_rewrite_mtimes(repo, cache_dir, counted, monkeypatch):
    from chronon_airflow.render import build_dags

    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_STAMP", "content")
    build_dags(repo)
    for f in (repo / "production").rglob("*"):  # a fresh checkout: same bytes, new mtimes
        if f.is_file():
            f.write_bytes(f.read_bytes())
            os.utime(f, ns=(1, 1))
    counted["reset"]()
    build_dags(repo)
    assert counted["parsed"] == [] and counted["rendered"] == []
    # Same size and mtime, other bytes: content stamps see it (mtime stamps would not).
    f = repo / JOIN_FILE
    data = f.read_bytes()
    assert b'"offlineSchedule": "@daily"' in data
    f.write_bytes(data.replace(b'"offlineSchedule": "@daily"', b'"offlineSchedule": "@never"'))
    os.utime(f, ns=(1, 1))
    assert build_dags(repo)[JOIN].timetable.can_be_scheduled is False
    assert counted["parsed"] == [JOIN_FILE]


def test_task_start_parse_builds_only_its_dag_from_the_cache(repo, cache_dir, monkeypatch, counted):
    from chronon_airflow.render import build_dags

    full = build_dags(repo)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", CHAINED)
    counted["reset"]()
    one = build_dags(repo)
    assert list(one) == [CHAINED] and counted["parsed"] == []
    assert _serialized(one) == {CHAINED: _serialized(full)[CHAINED]}


def test_task_start_checks_only_the_files_its_dag_is_built_from(repo, cache_dir, monkeypatch, counted):
    from chronon_airflow.render import build_dags

    full = build_dags(repo)
    _edit(repo / "production/joins/risk/txn_fraud.v1", _schedule("@weekly"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", JOIN)
    counted["reset"]()
    assert _serialized(build_dags(repo)) == {JOIN: _serialized(full)[JOIN]}
    assert counted["parsed"] == []  # answered from its own inputs, nothing re-planned

    _edit(repo / JOIN_FILE, _schedule("@weekly"))
    assert build_dags(repo)[JOIN].timetable.expression == "0 0 * * 0"


def test_task_start_of_a_chained_group_by_sees_its_parent_join_change(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    before = build_dags(repo)[CHAINED]
    assert [t.table for t in before.tasks if hasattr(t, "table")] == ["search_features.search_query_relevance_v1"]
    _edit(repo / JOIN_FILE, lambda d: d["metaData"].__setitem__("outputNamespace", "search_features_v2"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", CHAINED)
    after = build_dags(repo)[CHAINED]
    # The GroupBy keeps its own compiled dependency and now also waits for the moved parent table.
    assert [t.table for t in after.tasks if hasattr(t, "table")] == ["search_features.search_query_relevance_v1",
                                                                     "search_features_v2.search_query_relevance_v1"]


def test_task_start_sees_teams_json_and_new_joins_of_a_metadata_upload(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags

    full = build_dags(repo)
    queue = full[JOIN].default_args.get("queue")
    _edit(repo / "teams.json", lambda d: d["search"].__setitem__("airflow_queue", "search_queue"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", JOIN)
    assert build_dags(repo)[JOIN].default_args["queue"] == "search_queue" != queue

    # A team's metadata upload lists every join of the team: a new join file is part of its DAG.
    upload = full[UPLOAD].get_task("register_team_model_transforms")
    new = repo / "production/joins/search/query_relevance.v2"
    shutil.copy(repo / JOIN_FILE, new)
    _edit(new, lambda d: d["metaData"].__setitem__("name", "search.query_relevance.v2"))
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", UPLOAD)
    task = build_dags(repo)[UPLOAD].get_task("register_team_model_transforms")
    assert task.join_paths == [*upload.join_paths, "production/joins/search/query_relevance.v2"]


@pytest.mark.parametrize("damage", ["garbage", "empty", "folder_is_a_file", "read_only", "others_can_write"])
def test_nothing_about_the_cache_breaks_a_parse(repo, cache_dir, damage, monkeypatch):
    from chronon_airflow.render import build_dags

    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", "off")
    expected = _serialized(build_dags(repo))
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", str(cache_dir))
    if damage == "folder_is_a_file":
        cache_dir.write_text("not a folder")
    else:
        _parsed(repo)
        (env,) = [p for p in cache_dir.iterdir() if p.is_dir()]
        files = [p for p in env.rglob("*") if p.is_file()]
        if damage in ("garbage", "empty"):
            for p in files:
                p.write_bytes(b"\x80\x05garbage" if damage == "garbage" else b"")
        elif damage == "read_only":
            for p in [env, *env.rglob("*")]:
                if p.is_dir():
                    os.chmod(p, 0o500)
        else:
            os.chmod(env, 0o777)
    try:
        assert _serialized(build_dags(repo)) == expected
        _edit(repo / JOIN_FILE, _schedule("@weekly"))
        assert build_dags(repo)[JOIN].timetable.expression == "0 0 * * 0"
        monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", JOIN)
        assert build_dags(repo)[JOIN].timetable.expression == "0 0 * * 0"
    finally:
        for p in cache_dir.rglob("*") if cache_dir.is_dir() else []:
            if p.is_dir():
                os.chmod(p, 0o700)


def test_a_folder_others_can_write_is_never_read(repo, cache_dir, counted):
    from chronon_airflow.render import build_dags

    _parsed(repo)
    (env,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    os.chmod(env / "dags", 0o777)
    counted["reset"]()
    build_dags(repo)
    assert len(counted["rendered"]) == 20  # nothing read from it (and nothing written there)


def test_the_plugin_page_key_changes_with_any_file(repo, cache_dir):
    from chronon_airflow.render.cache import snapshot

    key = snapshot(repo).key
    assert snapshot(repo).key == key
    _edit(repo / "production/group_bys/risk/merchant_fraud_stats.v1", lambda d: d.__setitem__("x", 1))
    assert snapshot(repo).key != key


# -- the background writer -------------------------------------------------------------------------

def _queued(repo, text: str, go: Path, done: Path):
    """A shard cache with one queued write that waits for ``go`` (at most 30 s), then writes ``done``."""
    import time

    from chronon_airflow.render.cache import ShardCache

    cache = ShardCache(repo, 0, 1)
    cache._dir.mkdir(parents=True)

    def write():
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        done.write_text(text)

    cache._writes.append(write)
    return cache


def test_the_parse_does_not_wait_for_the_cache_writes_and_the_next_parse_does(repo, cache_dir, tmp_path):
    go, done = tmp_path / "go", tmp_path / "done"
    cache = _queued(repo, "written", go, done)
    read_end, write_end = os.pipe()  # as the dag-processor reads a parse's output
    try:
        cache.flush()  # inline, this would block until the write gave up waiting (30 s) and wrote
        assert not done.exists()
        os.close(write_end)
        write_end = -1
        # The writer holds none of the parse's descriptors: the reader sees the end at once.
        assert os.read(read_end, 1) == b""
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    go.touch()
    cache.wait_for_writer()  # what the next parse of the shard does first
    assert done.read_text() == "written"


def test_a_stuck_writer_costs_a_parse_the_cache_never_its_dags(repo, cache_dir, monkeypatch):
    import fcntl

    from chronon_airflow.render import build_dags, cache

    expected = _serialized(_parsed(repo))
    _edit(repo / JOIN_FILE, _schedule("@weekly"))
    (env,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    monkeypatch.setattr(cache, "WRITER_WAIT", 0.2)
    with open(env / "0-of-1.lock", "rb") as held:  # a writer that never finishes
        fcntl.flock(held, fcntl.LOCK_EX)
        open_fds = len(os.listdir("/proc/self/fd"))
        dags = build_dags(repo)  # waits 0.2 s for it, then builds (and writes inline)
        assert len(os.listdir("/proc/self/fd")) == open_fds  # nothing left open
    assert dags[JOIN].timetable.expression == "0 0 * * 0"
    assert set(_serialized(dags)) == set(expected)


def test_inline_cache_writes(repo, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_WRITES", "inline")
    go, done = tmp_path / "go", tmp_path / "done"
    go.touch()
    _queued(repo, "inline", go, done).flush()
    assert done.read_text() == "inline"


def test_a_cold_parse_leaves_a_complete_cache_behind(repo, cache_dir, counted):
    """The files the background writer writes are what the next parse (and a task start) read."""
    from chronon_airflow.render import build_dags

    first = _parsed(repo)
    envs = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert len(envs) == 1
    names = {p.name for p in envs[0].iterdir()}
    assert {"0-of-1.index", "0-of-1.state", "0-of-1.lock", "plans", "files", "dags"} <= names
    assert len(list((envs[0] / "plans").iterdir())) == len(first)
    counted["reset"]()
    assert _serialized(build_dags(repo)) == _serialized(first)
    assert counted["rendered"] == [] and counted["parsed"] == []
