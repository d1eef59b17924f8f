"""The bad-config corpus: one repo with every case plus configs/, loaded once; assertions per case.

For each broken file: the DAG file still imports, every valid DAG is still generated, and the error
names the file and the field in ``chronon-airflow validate``, in the ``chronon.config_errors`` DAG
(doc_md and one task per file) and on the Chronon page (JSON and HTML). For each hostile file:
nothing is executed or rendered.
"""
from __future__ import annotations

import html
import re

import pytest

from chronon_airflow.render.dags import _md

from .conftest import dump
from .corpus import JINJA, JINJA_RENDERED, PWNED_FILES, SECRETS, cases

CASES = cases()
ERROR_CASES = [c for c in CASES if c.errors]
VALID_CASES = [c for c in CASES if not c.errors]
EXPECTED_ERRORS = [(c.id, *e) for c in ERROR_CASES for e in c.errors]
DAG_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")


def test_corpus_is_big_enough():
    assert len(CASES) >= 30
    assert len(ERROR_CASES) >= 30


def test_dag_file_imports_and_every_valid_dag_survives(corpus, configs_dag_ids):
    assert corpus.bag.import_errors == {}
    assert configs_dag_ids <= set(corpus.bag.dags), configs_dag_ids - set(corpus.bag.dags)
    assert "chronon.config_errors" in corpus.bag.dags
    for dag_id, dag in corpus.bag.dags.items():
        assert DAG_ID_RE.fullmatch(dag_id), dag_id
        for task in dag.tasks:
            assert DAG_ID_RE.fullmatch(task.task_id), (dag_id, task.task_id)


def test_the_three_error_lists_agree(corpus):
    """CLI, config_errors DAG and page show one list: the plan's."""
    cli = [line for line in corpus.validate.stdout.splitlines() if line]
    dag_tasks = {e["path"] for t in corpus.errors_dag.tasks for e in t.errors}
    page_errors = {(e["path"], e["field"]) for e in corpus.summary["errors"]}
    assert corpus.validate.returncode == 1
    assert len(cli) == len(corpus.summary["errors"]) == len(EXPECTED_ERRORS), (cli, EXPECTED_ERRORS)
    assert page_errors == {(p, f) for _, p, f, _ in EXPECTED_ERRORS}
    assert dag_tasks == {p for _, p, _, _ in EXPECTED_ERRORS}
    assert len(corpus.errors_dag.tasks) == len(dag_tasks)  # one task per bad file


@pytest.mark.parametrize("case_id,path,field,fragment", EXPECTED_ERRORS, ids=[e[0] + ":" + e[1].rsplit("/", 1)[-1]
                                                                              for e in EXPECTED_ERRORS])
def test_error_named_in_cli(corpus, case_id, path, field, fragment):
    prefix = f"{path}: {field or '<file>'}: "
    lines = [line for line in corpus.validate.stdout.splitlines() if line.startswith(prefix)]
    assert lines, f"no line starting {prefix!r} in:\n{corpus.validate.stdout}"
    assert any(fragment in line for line in lines), lines
    # The plan (text and JSON) reports it too, as the documented contract.
    plan_errors = {(e["path"], e["field"]) for e in __import__("json").loads(corpus.plan_json.stdout)["errors"]}
    assert (path, field) in plan_errors


@pytest.mark.parametrize("case_id,path,field,fragment", EXPECTED_ERRORS, ids=[e[0] + ":" + e[1].rsplit("/", 1)[-1]
                                                                              for e in EXPECTED_ERRORS])
def test_error_named_in_config_errors_dag(corpus, case_id, path, field, fragment):
    doc = corpus.errors_dag.doc_md
    row = f"| {_md(path)} | {_md(field or '(file)')} | "
    rows = [line for line in doc.splitlines() if line.startswith(row)]
    assert rows and any(_md(fragment) in r for r in rows), (row, doc)
    (task,) = [t for t in corpus.errors_dag.tasks if any(e["path"] == path for e in t.errors)]
    assert task.template_fields == ()  # messages quote config strings: never rendered
    assert any(e["field"] == field and fragment in e["message"] for e in task.errors)


@pytest.mark.parametrize("case_id,path,field,fragment", EXPECTED_ERRORS, ids=[e[0] + ":" + e[1].rsplit("/", 1)[-1]
                                                                              for e in EXPECTED_ERRORS])
def test_error_named_on_plugin_page(corpus, case_id, path, field, fragment):
    matching = [e for e in corpus.summary["errors"] if e["path"] == path and e["field"] == field]
    assert matching and any(fragment in e["message"] for e in matching)
    cell = f"<code>{html.escape(path, quote=True)}</code></td><td><code>{html.escape(field or '<file>')}</code>"
    assert cell in corpus.html


@pytest.mark.parametrize("case", [c for c in VALID_CASES if c.dag_ids], ids=lambda c: c.id)
def test_valid_hostile_config_still_generates_its_dags(corpus, case):
    for dag_id in case.dag_ids:
        assert dag_id in corpus.bag.dags
        dag = corpus.bag.dags[dag_id]
        assert {t.task_id for t in dag.tasks} >= {"check_range", "raw_join", "wait_for_batch_inference"}
    paths = {e["path"] for e in corpus.summary["errors"]}
    assert not any(p in paths for p in case.files)


@pytest.mark.parametrize("case", [c for c in VALID_CASES if not c.dag_ids], ids=lambda c: c.id)
def test_ignored_files_are_not_errors(corpus, case):
    paths = {e["path"] for e in corpus.summary["errors"]}
    assert not (set(case.files) & paths)
    assert not any(p in corpus.validate.stdout for p in case.files)


def test_unknown_backend_is_a_validate_warning(corpus):
    assert ("warning: model backend 'nosuchbackend' has no Airflow connection 'chronon_backend_nosuchbackend' "
            "(used by search.hardening_unknown_backend.v1)") in corpus.validate.stderr
    assert "nosuchbackend" in corpus.bag.dags["chronon.join_backfill.search.hardening_unknown_backend.v1"].tags


def test_hostile_dependency_name_becomes_a_sanitized_task_id(corpus):
    dag = corpus.bag.dags["chronon.join_backfill.search.hardening_hostile_dependency_name.v1"]
    waits = [t.task_id for t in dag.tasks if t.task_id.startswith("__")]
    assert waits == ["___7777_7______touch__tmp_chronon-hardening-pwned-1_"]


def _everything_shown(corpus) -> str:
    docs = []
    for dag in corpus.bag.dags.values():
        docs.append(dag.doc_md or "")
        docs += [t.doc_md or "" for t in dag.tasks]
    return "\n".join([corpus.validate.stdout, corpus.validate.stderr, corpus.plan_json.stdout,
                      corpus.summary_text, corpus.html, *docs])


def test_nothing_hostile_was_executed(corpus):
    for f in PWNED_FILES:
        assert not f.exists(), f"{f} was created: a config string reached a shell"
    assert not (corpus.root / "chronon-hardening-pwned-4").exists()


def test_no_jinja_was_evaluated_anywhere(corpus):
    shown = _everything_shown(corpus)
    assert JINJA in corpus.validate.stdout  # the CLI quotes the bad names verbatim: the markers are there
    assert JINJA_RENDERED not in shown


def test_doc_md_and_page_escape_config_strings(corpus):
    dag = corpus.bag.dags["chronon.join_backfill.search.hardening_hostile_description.v1"]
    assert "<script>" not in dag.doc_md and "&lt;script&gt;" in dag.doc_md
    assert "](javascript" not in dag.doc_md
    assert "{{" not in dag.doc_md and "&#123;&#123; 7777*7 &#125;&#125;" in dag.doc_md
    assert "{{" not in corpus.errors_dag.doc_md
    assert "<script>" not in corpus.html


def test_secret_looking_params_load_but_are_never_shown(corpus):
    from chronon_airflow.config import load_repo

    join = load_repo(corpus.root).joins["search.hardening_secret_params.v1"]
    assert set(SECRETS) <= set(join.models[0].backend_params.values())  # loaded, they reach the backend
    shown = _everything_shown(corpus)
    for secret in SECRETS:
        assert secret not in shown
    (model,) = [m for m in corpus.summary["models"] if m["join"] == "search.hardening_secret_params.v1"]
    assert model["params"] == {"model_name": "query_encoder", "model_version": "3", "api_key": "***",
                               "auth_token": "***", "db_password": "***"}
    assert dump(corpus.bag.dags["chronon.join_backfill.search.hardening_secret_params.v1"].doc_md).count("***") == 3
