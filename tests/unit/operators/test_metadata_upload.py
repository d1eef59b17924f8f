"""The team's re-registration task loads each join file at run time: what changed since the parse."""
from __future__ import annotations

import shutil

from chronon_airflow.operators.metadata_upload import RegisterTeamModelTransformsOperator

MT = "production/joins/search/query_relevance.v1"
PLAIN = "production/joins/search/plain_join.v1"


def test_a_join_that_lost_its_model_transforms_is_not_registered_and_a_broken_one_fails(configs_repo, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(configs_repo, repo)
    # The DAG was parsed when the plain join had model transforms; its file no longer has them.
    op = RegisterTeamModelTransformsOperator(task_id="register", repo_root=str(repo),
                                             join_paths=[MT, PLAIN, "production/joins/search/gone.v1"])
    joins, broken = op._load()
    assert [j.name for j in joins] == ["search.query_relevance.v1"]
    assert [(b.path, b.ok) for b in broken] == [("production/joins/search/gone.v1", False)]
    assert "gone.v1" in broken[0].failures[0]
