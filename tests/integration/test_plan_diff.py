"""``chronon-airflow plan --diff``: two copies of configs/ with a compiled file changed and one added,
a broken NEW side, usage errors, and the ``git:<rev>`` form on a git repo made here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import CONFIGS, writable_copy

CLI = str(Path(sys.executable).parent / "chronon-airflow")
JOIN_FILE = "production/joins/risk/txn_fraud.v1"
JOIN_DAG = "chronon.join_backfill.risk.txn_fraud.v1"
WAIT = "wait_for_payments.card_transactions_ds"
NEW_FILE = "production/joins/search/query_relevance.v2"
NEW_DAG = "chronon.join_backfill.search.query_relevance.v2"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CHRONON__") and k != "CHRONON_REPO_PATH"}
    return {**env, **extra}


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "plan", *args], capture_output=True, text=True, env=_env(**env), timeout=300)


def _change(root: Path) -> None:
    """The offlineSchedule and the dependency spec (a 1-day lag) of a join, and a new join."""
    f = root / JOIN_FILE
    conf = json.loads(f.read_text())
    conf["metaData"]["offlineSchedule"] = "30 2 * * *"
    deps = [json.loads(d) for d in conf["metaData"]["dependencies"]]
    assert deps[0]["name"] == WAIT
    deps[0]["spec"] = "payments.card_transactions/ds={{ macros.ds_add(ds, -1) }}"
    conf["metaData"]["dependencies"] = [json.dumps(d) for d in deps]
    f.write_text(json.dumps(conf, indent=2))
    src = json.loads((root / "production/joins/search/query_relevance.v1").read_text())
    src["metaData"]["name"] = "search.query_relevance.v2"
    (root / NEW_FILE).write_text(json.dumps(src, indent=2))


@pytest.fixture(scope="module")
def sides(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("diff")
    old, new = writable_copy(CONFIGS, base / "old"), writable_copy(CONFIGS, base / "new")
    _change(new)
    return old, new


def test_json_diff_of_a_changed_and_an_added_file(sides):
    old, new = sides
    out = _cli("--diff", str(old), str(new), "--json")
    assert out.returncode == 3, out.stderr
    doc = json.loads(out.stdout)
    assert doc["old"] == {"repo": str(old.resolve()), "revision": None, "commit": None}
    assert doc["changed"] is True and doc["new_errors"] == 0
    assert [d["dag_id"] for d in doc["dags"]["added"]] == [NEW_DAG]
    assert doc["dags"]["removed"] == []
    changed = {d["dag_id"]: d for d in doc["dags"]["changed"]}
    # The new join joins its team's metadata upload; nothing else moves (the copies' folders differ,
    # but the argv is compared relative to each repo's root).
    assert sorted(changed) == [JOIN_DAG, "chronon.metadata_upload.search"]
    join = changed[JOIN_DAG]
    assert join["fields"] == [{"field": "schedule", "old": "@daily", "new": "30 2 * * *"}]
    assert join["tasks"]["added"] == [] and join["tasks"]["removed"] == []
    (wait,) = join["tasks"]["changed"]
    assert wait["task_id"] == WAIT and wait["fields"] == [{"field": "partition.lag", "old": 0, "new": 1}]
    (joins,) = changed["chronon.metadata_upload.search"]["tasks"]["changed"][0]["fields"]
    assert joins["field"] == "joins" and joins["edits"] == [{"op": "added", "value": ["search.query_relevance.v2"]}]
    assert doc["errors"] == {"added": [], "resolved": []} and doc["warnings"] == {"added": [], "resolved": []}


def test_text_diff(sides):
    old, new = sides
    out = _cli("--diff", str(old), str(new))
    assert out.returncode == 3, out.stderr
    text = out.stdout
    assert text.startswith(f"plan diff: {old} -> {new}\nDAGs: 1 added, 0 removed, 2 changed;")
    assert f"added DAGs:\n+ {NEW_DAG}  [join_backfill]  team=search  schedule=@daily  source={NEW_FILE}" in text
    assert (f"~ {JOIN_DAG}  [join_backfill]\n"
            "    ~ schedule: @daily -> \"30 2 * * *\"\n"
            f"    ~ task {WAIT} (wait_for_partition)\n"
            "        ~ partition.lag: 0 -> 1\n") in text
    # The reverse change: the DAG goes away.
    back = _cli("--diff", str(new), str(old))
    assert back.returncode == 3 and f"removed DAGs:\n- {NEW_DAG}  [join_backfill]" in back.stdout


def test_no_change_and_the_default_new_side(sides):
    old, _ = sides
    out = _cli("--diff", str(old), "--repo", str(CONFIGS))
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("no change to Airflow\n")


def test_config_errors_on_the_new_side_beat_changes(sides, tmp_path):
    old, _ = sides
    broken = writable_copy(CONFIGS, tmp_path / "broken")
    (broken / JOIN_FILE).write_text('{"metaData": {"name": "risk.txn_fraud.v1"')
    out = _cli("--diff", str(old), str(broken))
    assert out.returncode == 1
    added = out.stdout.split("config errors added:\n", 1)[1]
    assert "+ production/joins/risk/txn_fraud.v1: <file>: invalid JSON" in added
    assert f"\n- {JOIN_DAG}  [join_backfill]" in out.stdout and "\n+ chronon.config_errors" in out.stdout
    assert "error: production/joins/risk/txn_fraud.v1" in out.stderr
    assert _cli("--diff", str(old), str(broken), "--exit-zero").returncode == 0
    # Fixing it resolves the error: a change, no error left.
    fixed = _cli("--diff", str(broken), str(old), "--json")
    assert fixed.returncode == 3
    assert JOIN_FILE in [e["path"] for e in json.loads(fixed.stdout)["errors"]["resolved"]]
    assert json.loads(fixed.stdout)["errors"]["added"] == []


def test_usage_errors(sides, tmp_path):
    old, new = sides
    assert _cli("--diff", str(tmp_path / "missing"), str(new)).returncode == 2
    assert _cli("--diff", str(old), str(new), str(new)).returncode == 2
    assert _cli("--exit-zero").returncode == 2
    bad = _cli("--diff", "git:--output=/tmp/x", "--repo", str(CONFIGS))
    assert bad.returncode == 2 and "not a git revision" in bad.stderr
    assert _cli("--diff", "git:", "--repo", str(CONFIGS)).returncode == 2
    # --repo outside any git work tree.
    assert _cli("--diff", "git:HEAD", "--repo", str(old), GIT_CEILING_DIRECTORIES=str(old.parent)).returncode == 2


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **GIT_ENV})
    return out.stdout.strip()


def test_git_revisions(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q")
    repo = writable_copy(CONFIGS, work / "chronon")  # the Chronon repo is a folder of the git repo
    (work / "README").write_text("not part of the Chronon repo\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "first")
    _change(repo)
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "second")
    head = _git(work, "rev-parse", "HEAD")
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    out = _cli("--diff", "git:HEAD~1", "git:HEAD", "--repo", str(repo), "--json", TMPDIR=str(tmp))
    assert out.returncode == 3, out.stderr
    doc = json.loads(out.stdout)
    assert doc["new"] == {"repo": str(repo.resolve()), "revision": "HEAD", "commit": head}
    assert [d["dag_id"] for d in doc["dags"]["added"]] == [NEW_DAG]
    assert JOIN_DAG in [d["dag_id"] for d in doc["dags"]["changed"]]
    assert list(tmp.iterdir()) == []  # the checkouts are cleaned up

    # Against the work tree (the default NEW side), from inside a subfolder of the Chronon repo.
    assert _cli("--diff", "git:HEAD", "--repo", str(repo)).returncode == 0
    (repo / NEW_FILE).unlink()
    text = _cli("--diff", "git:HEAD", "--repo", str(repo))
    assert text.returncode == 3 and f"removed DAGs:\n- {NEW_DAG}" in text.stdout
    assert text.stdout.startswith(f"plan diff: git:HEAD ({head[:12]}) -> {repo}")

    missing = _cli("--diff", "git:no-such-branch", "--repo", str(repo))
    assert missing.returncode == 2 and "no such revision" in missing.stderr
    # A revision where the folder did not exist yet.
    _git(work, "checkout", "-q", "--orphan", "empty")
    _git(work, "rm", "-rq", "--cached", ".")
    (work / "other").write_text("x\n")
    _git(work, "add", "other")
    _git(work, "commit", "-q", "-m", "unrelated")
    gone = _cli("--diff", "git:empty", "--repo", str(repo))
    assert gone.returncode == 2 and "has no files" in gone.stderr
