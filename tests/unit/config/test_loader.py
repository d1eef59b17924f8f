"""The compiled-config loader on configs/, on the shared reference repo, and on each error kind."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chronon_airflow.config import load_repo
from tests.support.paths import writable_copy

REF_JOIN = "production/joins/search/query_relevance.v1"


def _all_compiled(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "production").rglob("*") if p.is_file())


@pytest.mark.parametrize("repo_fixture", ["configs_repo", "reference_repo"])
def test_every_compiled_file_loads(request, repo_fixture):
    root = request.getfixturevalue(repo_fixture)
    repo = load_repo(root)
    assert repo.errors == ()
    loaded = sorted(c.path for c in repo.configs())
    assert loaded == _all_compiled(root)


def test_reference_semantics(reference_repo):
    repo = load_repo(reference_repo)
    qr = repo.joins["search.query_relevance.v1"]
    assert qr.path == REF_JOIN
    assert qr.metadata.online is True and qr.metadata.production is False
    assert qr.metadata.offline_schedule == "@daily"
    assert qr.metadata.custom_json["check_consistency"] is False
    assert qr.metadata.table_properties["retention_days"] == "90"
    dep = qr.metadata.dependencies[0]
    assert (dep.name, dep.table, dep.partition_column, dep.lag_days, dep.start, dep.end) == (
        "wait_for_search_data.search_events_ds", "search_data.search_events", "ds", 0, "2024-01-01", None)
    assert qr.left.kind == "events" and qr.left.query.selects["query_text"] == "lower(trim(query))"
    assert [d.name for d in qr.derivations] == ["item_dwell_per_click_7d"]
    (t,) = qr.model_transforms.transforms
    assert t.model.name == "query_encoder" and t.model.backend == "reference"
    assert dict(t.model.backend_params) == {"model_name": "query_encoder", "model_version": "3"}
    assert [(f.name, f.kind) for f in t.model.input_schema] == [("query", 7)]
    assert dict(t.input_mappings) == {"query": "query_text"}
    assert t.output_columns() == ("qe_query_embedding",)
    assert qr.model_transforms.passthrough_fields == ("user_id", "item_id", "item_dwell_per_click_7d")
    # thrift() is the file's JSON, unknown fields included, and a copy.
    raw = qr.thrift()
    assert raw == json.loads((reference_repo / REF_JOIN).read_text())
    raw["metaData"]["name"] = "changed"
    assert qr.thrift()["metaData"]["name"] == "search.query_relevance.v1"

    fraud = repo.joins["risk.txn_fraud.v1"]
    assert fraud.backends == ("sagemaker", "reference")
    assert [t.output_columns() for t in fraud.model_transforms.transforms] == [("fraud_score",),
                                                                               ("merchant_embedding",)]
    assert "plain_join" not in str(repo.joins["search.plain_join.v1"].model_transforms)
    assert repo.joins["search.plain_join.v1"].left.kind == "entities"

    chained = repo.group_bys["search.query_embedding_stats.v1"]
    (src,) = chained.join_sources
    assert src.join.name == "search.query_relevance.v1"
    assert src.query.selects["query_embedding"] == "qe_query_embedding"

    risk = repo.teams["risk"]
    assert risk.maintainer_emails == ("risk-ml@example.com",) and risk.airflow_queue == "risk_batch"
    assert repo.teams["search"].dag_start_date == "2024-01-01"


def test_objects_are_immutable(reference_repo):
    repo = load_repo(reference_repo)
    join = repo.joins["risk.txn_fraud.v1"]
    with pytest.raises(AttributeError):
        join.metadata.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        join.metadata.table_properties["pii"] = "true"  # type: ignore[index]
    with pytest.raises(TypeError):
        repo.joins["x"] = join  # type: ignore[index]


def test_table_names_follow_upstream(reference_repo):
    repo = load_repo(reference_repo)
    qr = repo.joins["search.query_relevance.v1"]
    assert qr.output_table == "search_features.search_query_relevance_v1"
    assert qr.pre_mt_table == "search_features.search_query_relevance_v1_pre_mt"
    assert qr.raw_join_table == qr.pre_mt_table
    plain = repo.joins["search.plain_join.v1"]
    assert plain.raw_join_table == plain.output_table == "search_features.search_plain_join_v1"
    # The chained GroupBy's dependency (written by the compiler) waits on the table we compute.
    chained = repo.group_bys["search.query_embedding_stats.v1"]
    assert chained.metadata.dependencies[0].table == qr.output_table
    assert repo.group_bys["risk.merchant_fraud_stats.v1"].metadata.dependencies[0].table == \
        repo.joins["risk.txn_fraud.v1"].output_table
    # Join-part columns, as the raw join writes them.
    assert "risk_user_txn_stats_v1_amount_cents_sum_30d" in repo.joins["risk.txn_fraud.v1"].raw_join_columns()


def test_sanitize_replaces_every_unsafe_character():
    from chronon_airflow import naming

    assert naming.sanitize("team.my-join.v1") == "team_my_join_v1"
    assert naming.output_table("ns", "a.b-c.v2") == "ns.a_b_c_v2"
    assert naming.pre_mt_table("ns", "a.b") == "ns.a_b_pre_mt"
    assert naming.model_output_column("embedding", {"embedding": "e"}, "qe") == "qe_e"
    assert naming.model_output_column("score", {}, None) == "score"
    assert naming.aggregation_column("txn_id", 6, (6, 0)) == "txn_id_count_6h"


# --- error kinds --------------------------------------------------------------------------------


@pytest.fixture()
def broken(tmp_path, reference_repo) -> Path:
    """A writable copy of the reference repo to break one file at a time."""
    return writable_copy(reference_repo, tmp_path / "repo", shutil.ignore_patterns("*.py", "__pycache__"))


def _edit(root: Path, rel: str, change) -> None:
    path = root / rel
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _errors(root: Path):
    repo = load_repo(root)
    return repo, [(e.path, e.field) for e in repo.errors], [e.message for e in repo.errors]


def test_invalid_json_is_an_error_and_the_rest_loads(broken):
    (broken / REF_JOIN).write_text('{"metaData": {"name": ')
    repo, where, messages = _errors(broken)
    assert (REF_JOIN, "") in where
    assert "invalid JSON" in messages[where.index((REF_JOIN, ""))]
    assert "search.query_relevance.v1" not in repo.joins
    assert set(repo.joins) == {"risk.txn_fraud.v1", "search.plain_join.v1"}
    # Its chained GroupBy now points at a join that is not in the repo.
    assert any(e.path.endswith("query_embedding_stats.v1") and "joinSource" in e.field for e in repo.errors)
    assert "risk.merchant_fraud_stats.v1" in repo.group_bys


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        (lambda d: d["metaData"].pop("name"), "metaData.name", "is required"),
        (lambda d: d["metaData"].pop("team"), "metaData.team", "is required"),
        (lambda d: d["metaData"].update(online="yes"), "metaData.online", "expected 0 or 1"),
        (lambda d: d["metaData"].update(dependencies="x"), "metaData.dependencies", "expected a list"),
        (lambda d: d["metaData"].update(customJson="{not json"), "metaData.customJson", "not valid JSON"),
        (lambda d: d["metaData"].update(name="risk.txn fraud;rm -rf /"), "metaData.name", "not a valid name"),
        (lambda d: d["metaData"].update(team="nobody"), "metaData.team", "does not match the file's folder"),
        (lambda d: d["left"]["events"]["query"].update(startPartition="2024-13-45"),
         "left.events.query.startPartition", "not a YYYY-MM-DD"),
        (lambda d: d["modelTransforms"]["transforms"][1]["model"]["inferenceSpec"].pop("modelBackend"),
         "modelTransforms.transforms[1].model.inferenceSpec.modelBackend", "is required"),
        (lambda d: d["modelTransforms"]["transforms"][0].update(inputMappings=[1]),
         "modelTransforms.transforms[0].inputMappings", "expected an object"),
        (lambda d: d["metaData"]["dependencies"].append('{"name": "x", "spec": "{{ run_something() }}"}'),
         "metaData.dependencies[1].spec", "not a partition spec"),
    ],
)
def test_field_errors_name_the_field(broken, change, field, fragment):
    rel = "production/joins/risk/txn_fraud.v1"
    _edit(broken, rel, change)
    repo, where, messages = _errors(broken)
    mine = [m for (p, f), m in zip(where, messages, strict=True) if p == rel]
    assert [(p, f) for p, f in where if p == rel] == [(rel, field)], repo.errors
    assert fragment in mine[0]
    assert "search.query_relevance.v1" in repo.joins and "search.plain_join.v1" in repo.joins


def test_a_stray_copy_is_an_error_and_the_compilers_file_keeps_its_name(broken):
    # A backup beside the real file claims the same metaData.name: only the copy is refused, the
    # file at the compiler's path (production/joins/<team>/<name after "team.">) keeps its DAGs.
    shutil.copy(broken / REF_JOIN, broken / "production/joins/search/query_relevance_copy.v1")
    repo, where, messages = _errors(broken)
    assert where == [("production/joins/search/query_relevance_copy.v1", "metaData.name")]
    assert "does not match the file's path" in messages[0]
    assert "production/joins/search/query_relevance.v1" in messages[0]
    assert repo.joins["search.query_relevance.v1"].path == REF_JOIN
    assert "risk.txn_fraud.v1" in repo.joins


def test_files_outside_the_compilers_layout_are_refused(broken):
    nested = broken / "production/joins/search/old"
    nested.mkdir()
    shutil.copy(broken / REF_JOIN, nested / "query_relevance.v1")
    other_team = broken / "production/joins/nobody"
    other_team.mkdir()
    data = json.loads((broken / REF_JOIN).read_text())
    data["metaData"].update(name="nobody.query_relevance.v1", team="nobody")
    (other_team / "query_relevance.v1").write_text(json.dumps(data))
    repo, where, messages = _errors(broken)
    assert ("production/joins/search/old/query_relevance.v1", "") in where
    assert ("production/joins/nobody/query_relevance.v1", "metaData.team") in where
    assert any("never writes this path" in m for m in messages)
    assert any("not in teams.json" in m for m in messages)
    assert repo.joins["search.query_relevance.v1"].path == REF_JOIN


def test_join_source_to_missing_join(broken):
    (broken / "production/joins/risk/txn_fraud.v1").unlink()
    repo, where, _ = _errors(broken)
    assert where == [("production/group_bys/risk/merchant_fraud_stats.v1",
                      "sources[0].joinSource.join.metaData.name")]
    assert "risk.merchant_fraud_stats.v1" not in repo.group_bys
    assert "search.query_embedding_stats.v1" in repo.group_bys


def test_empty_and_non_utf8_files(broken):
    (broken / "production/joins/search/empty.v1").write_bytes(b"")
    (broken / "production/joins/search/latin1.v1").write_bytes(b'{"metaData": {"name": "caf\xe9"}}')
    _, where, messages = _errors(broken)
    assert ("production/joins/search/empty.v1", "") in where
    assert ("production/joins/search/latin1.v1", "") in where
    assert any("not UTF-8" in m for m in messages) and any("empty" in m for m in messages)


def test_bad_teams_json_is_reported(broken):
    (broken / "teams.json").write_text("[1, 2")
    repo, where, _ = _errors(broken)
    assert ("teams.json", "") in where
    assert repo.joins == {}  # every config names a team that no longer exists ...
    assert all(f == "metaData.team" for p, f in where if p != "teams.json")  # ... and each says so


def test_unknown_fields_are_tolerated(broken):
    _edit(broken, REF_JOIN, lambda d: (d.update(futureField={"x": 1}), d["metaData"].update(newKnob=3)))
    repo, where, _ = _errors(broken)
    assert where == []
    assert repo.joins["search.query_relevance.v1"].thrift()["futureField"] == {"x": 1}


@pytest.mark.parametrize("file_name", ["query relevance.v1", "x;id.v1", "{{ 7*7 }}.v1", "-rf.v1"])
def test_hostile_file_names_are_errors(broken, file_name):
    shutil.copy(broken / REF_JOIN, broken / "production/joins/search" / file_name)
    repo, where, messages = _errors(broken)
    rel = f"production/joins/search/{file_name}"
    assert (rel, "") in where
    assert "is not allowed" in messages[where.index((rel, ""))]
