"""DAG file shards: every DAG in exactly one file, each file's plan exactly the whole repo's plan
restricted to its teams (configs of other teams it reads included), a change in another shard's
file that a shard reads invalidates it, a task start parses only its own file, and Airflow's
DagBag over the generated files finds every DAG once."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.paths import CONFIGS

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "chronon_sample"
CROSS = "chronon.group_by_upload.risk.search_chained.v1"


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture()
def repo(tmp_path) -> Path:
    """configs/ plus a risk GroupBy chained on a search join (another team, so another shard for
    some shard counts) and a broken risk file."""
    root = tmp_path / "repo"
    shutil.copytree(CONFIGS, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    src = root / "production/group_bys/search/query_embedding_stats.v1"
    dst = root / "production/group_bys/risk/search_chained.v1"
    shutil.copy(src, dst)
    _edit(dst, lambda d: d["metaData"].update(name="risk.search_chained.v1", team="risk"))
    (root / "production/joins/risk/broken.v1").write_text("{not json")
    return root


def _serialized(dags: dict) -> dict:
    from airflow.serialization.serialized_objects import DagSerialization

    return {k: json.dumps(DagSerialization.to_dict(d), sort_keys=True, default=str) for k, d in dags.items()}


def _shard_plans(root: Path, shards: int) -> list:
    from chronon_airflow import settings
    from chronon_airflow.deployment import from_settings
    from chronon_airflow.render.cache import stamp
    from chronon_airflow.render.shards import own_files, plan_shard

    deployment = from_settings(settings.snapshot(), None)
    out = []
    for i in range(shards):
        own = {rel: stamp(root / rel) for rel in own_files(root, i, shards)}
        out.append(plan_shard(root, i, shards, deployment, own, lambda rel: stamp(root / rel)))
    return out


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("which", ["repo", "corpus"])
def test_each_shard_plans_exactly_its_share_of_the_whole_plan(repo, which, shards):
    from chronon_airflow import settings
    from chronon_airflow.deployment import from_settings
    from chronon_airflow.plan import load_plan
    from chronon_airflow.plan import model as pm
    from chronon_airflow.render.shards import path_shard, shard_of

    root = repo if which == "repo" else CORPUS
    _r, plan = load_plan(root, from_settings(settings.snapshot(), None))
    whole = {d.dag_id: d for d in plan.dags if d.kind != pm.CONFIG_ERRORS}
    got: dict = {}
    errors: list = []
    for sp in _shard_plans(root, shards):
        for d in sp.dags:
            if d.kind == pm.CONFIG_ERRORS:
                errors += [e for t in d.tasks for e in t.spec.errors]
                assert d.dag_id == ("chronon.config_errors" if shards == 1
                                    else f"chronon.config_errors.shard_{sp.shard}")
                assert all(path_shard(e.path, shards) == sp.shard for t in d.tasks for e in t.spec.errors)
                continue
            assert d.dag_id not in got and shard_of(d.team, shards) == sp.shard
            got[d.dag_id] = d
    assert got == whole
    assert sorted(errors, key=lambda e: (e.path, e.field)) == list(plan.errors)
    if which == "repo":
        assert CROSS in got and plan.errors  # the fixture's cross-team GroupBy and broken file


def test_a_shard_reads_the_parent_join_of_another_shard(repo):
    from chronon_airflow.render.shards import shard_of

    shards = 3
    assert shard_of("risk", shards) != shard_of("search", shards)
    risk = _shard_plans(repo, shards)[shard_of("risk", shards)]
    assert "production/joins/search/query_relevance.v1" in risk.closure
    assert all(not rel.startswith("production/joins/risk/") for rel in risk.closure)


def test_a_change_in_another_shards_file_reaches_the_shard_that_reads_it(repo, cache_dir):
    from chronon_airflow.render import build_dags
    from chronon_airflow.render.shards import shard_of

    shards = 3
    risk = shard_of("risk", shards)

    def tables() -> list[str]:
        dag = build_dags(repo, shard=risk, shards=shards)[CROSS]
        return sorted(t.table for t in dag.tasks if hasattr(t, "table"))

    assert "search_features.search_query_relevance_v1" in tables()
    _edit(repo / "production/joins/search/query_relevance.v1",
          lambda d: d["metaData"].__setitem__("outputNamespace", "moved"))
    assert "moved.search_query_relevance_v1" in tables()


@pytest.mark.parametrize("shards", [2, 3])
def test_shard_files_build_every_dag_once_as_the_single_file(repo, cache_dir, monkeypatch, shards):
    from chronon_airflow.render import build_dags

    single = _serialized(build_dags(repo))
    parts: dict = {}
    for i in range(shards):
        dags = _serialized(build_dags(repo, shard=i, shards=shards))
        assert not set(dags) & set(parts)
        parts.update(dags)
    errors = {k for k in parts if k.startswith("chronon.config_errors")}
    assert errors and all(k.startswith("chronon.config_errors.shard_") for k in errors)
    assert {k: v for k, v in parts.items() if k not in errors} == {k: v for k, v in single.items()
                                                                   if k != "chronon.config_errors"}
    # Warm: the same again, from the cache.
    again: dict = {}
    for i in range(shards):
        again.update(_serialized(build_dags(repo, shard=i, shards=shards)))
    assert again == parts


def test_a_task_start_builds_its_dag_from_its_own_file_only(repo, cache_dir, monkeypatch):
    from chronon_airflow.render import build_dags
    from chronon_airflow.render.shards import shard_of

    shards = 3
    for i in range(shards):
        build_dags(repo, shard=i, shards=shards)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", CROSS)
    mine = shard_of("risk", shards)
    assert list(build_dags(repo, shard=mine, shards=shards)) == [CROSS]
    assert build_dags(repo, shard=(mine + 1) % shards, shards=shards) == {}


def test_bad_shard_arguments(repo):
    from chronon_airflow.render import build_dags

    for shard, shards in ((3, 3), (-1, 2), (0, 0), (1, None)):
        with pytest.raises(ValueError):
            build_dags(repo, shard=shard, shards=shards)


def test_dag_files_written_and_replaced(tmp_path):
    from chronon_airflow.render.shards import write_dag_files

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "dags" / "chronon_dags.py", dags)
    (dags / "mine.py").write_text("# a user's own DAG file")
    with pytest.raises(FileExistsError, match="chronon_dags.py"):
        write_dag_files(dags, 3)
    written = write_dag_files(dags, 12, replace=True)
    assert [p.name for p in written] == [f"chronon_dags_{i:02d}.py" for i in range(12)]
    assert sorted(p.name for p in dags.iterdir()) == sorted(["mine.py", *(p.name for p in written)])
    assert all(len(p.read_text().splitlines()) <= 9 for p in written)  # a few lines, as every file in dags/
    assert "build_dags(shard=7, shards=12)" in written[7].read_text()
    (one,) = write_dag_files(dags, 1, replace=True)
    assert one.name == "chronon_dags.py" and sorted(p.name for p in dags.iterdir()) == ["chronon_dags.py", "mine.py"]
    # The checked-in single file is what `dag-files --shards 1` writes.
    assert one.read_text() == (Path(__file__).resolve().parents[2] / "dags" / "chronon_dags.py").read_text()


def test_the_dag_files_name_the_heavy_airflow_modules_for_the_dag_processor_to_pre_import(tmp_path):
    """The dag-processor imports the ``airflow.*`` modules a DAG file imports once, before forking a
    parser per file: the Spark operator's module (with OpenLineage and requests) is one of them."""
    from airflow.utils.file import iter_airflow_imports

    from chronon_airflow.render.shards import write_dag_files

    for path in write_dag_files(tmp_path, 2):
        assert "airflow.providers.apache.spark.operators.spark_submit" in set(iter_airflow_imports(str(path)))


def test_airflow_dagbag_over_the_shard_files(repo, cache_dir, monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import BundleDagBag

    from chronon_airflow.render import build_dags
    from chronon_airflow.render.shards import write_dag_files

    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(repo))
    folder = tmp_path / "dags"
    files = write_dag_files(folder, 3)
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=str(folder), bundle_name="test", load_op_links=False)
    assert not bag.import_errors
    expected = {k for k in build_dags(repo) if k != "chronon.config_errors"}
    assert {k for k in bag.dags if not k.startswith("chronon.config_errors")} == expected
    by_file = {Path(d.fileloc).name for d in bag.dags.values()}
    assert by_file <= {p.name for p in files} and len(by_file) >= 2


def test_the_dag_files_command(tmp_path, capsys):
    from chronon_airflow.cli import main

    assert main(["dag-files", "--shards", "3", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / f"chronon_dags_{i}.py") for i in range(3)]
    assert main(["dag-files", "--shards", "2", str(tmp_path)]) == 2  # chronon_dags_2.py would be left over
    assert "--replace" in capsys.readouterr().err
    assert main(["dag-files", "--shards", "2", "--replace", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chronon_dags_0.py", "chronon_dags_1.py"]
