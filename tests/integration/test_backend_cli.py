"""``register`` / ``infer`` / ``backend init-models`` through their argparse wiring."""
from __future__ import annotations

import json
import shutil

import pytest

from chronon_airflow import cli
from tests.support.backend import CONFIGS, start_backend
from tests.support.net import free_port


def run(argv: list[str]) -> int:
    """The real ``chronon-airflow`` parser: ``backend`` comes from the reference backend's entry point."""
    args = cli.build_parser().parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend-cli")
    b = start_backend(root / "home", free_port(), root / "warehouse", admin=False)
    yield b
    b.stop()


def test_register_and_infer(backend, capsys, monkeypatch):
    assert run(["register", "--join", "risk.txn_fraud.v1", "--repo", str(CONFIGS), "--backend-url", backend.url]) == 0
    out = capsys.readouterr().out
    assert "OK   registerModel fraud_scorer on reference: REGISTERED" in out
    assert "OK   registerModel merchant_embedder on reference: REGISTERED" in out
    assert "OK   registerModelTransform risk.txn_fraud.v1 on reference: REGISTERED" in out

    # The URL may also come from CHRONON_BACKEND_URL_<NAME>.
    monkeypatch.setenv("CHRONON_BACKEND_URL_REFERENCE", backend.url)
    row = {"txn_id": "t1", "merchant_id": "m_001", "amount_cents": 1500,
           "risk_user_txn_stats_v1_txn_id_count_7d": 3, "risk_user_txn_stats_v1_amount_cents_sum_30d": 12000}
    assert run(["infer", "--join", "risk.txn_fraud.v1", "--repo", str(CONFIGS), "--input", json.dumps(row)]) == 0
    outputs = json.loads(capsys.readouterr().out)
    assert len(outputs) == 1 and outputs[0]["txn_id"] == "t1"
    assert 0 <= outputs[0]["fraud_score"] <= 1 and len(outputs[0]["merchant_embedding"]) == 8


def test_register_failure_exits_1(backend, tmp_path, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(CONFIGS, repo)
    path = repo / "production" / "joins" / "search" / "query_relevance.v1"
    join = json.loads(path.read_text())
    join["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]["model_version"] = "42"
    path.write_text(json.dumps(join))
    assert run(["register", "--join", "search.query_relevance.v1", "--repo", str(repo),
                "--backend-url", backend.url]) == 1
    captured = capsys.readouterr()
    assert "FAIL registerModel query_encoder on reference: REJECTED unknown model 'query_encoder' version 42" \
        in captured.out
    assert "skipping registerModelTransform" in captured.err


def test_infer_before_register_fails_with_the_409(backend, capsys):
    rc = run(["infer", "--join", "search.query_relevance.v1", "--repo", str(CONFIGS), "--backend-url", backend.url,
              "--input", '[{"query_text": "x"}]'])
    # Only risk.txn_fraud.v1 is registered on this module's backend: query_relevance gets HTTP 409.
    assert rc == 1
    assert "409" in capsys.readouterr().err


def test_no_backend_url_names_the_options(monkeypatch, capsys):
    monkeypatch.delenv("CHRONON_BACKEND_URL_REFERENCE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE", raising=False)
    with pytest.raises(SystemExit, match="CHRONON_BACKEND_URL_REFERENCE.*chronon_backend_reference"):
        run(["register", "--join", "search.query_relevance.v1", "--repo", str(CONFIGS)])


def test_init_models(tmp_path, capsys):
    assert run(["backend", "init-models", "--home", str(tmp_path)]) == 0
    assert (tmp_path / "models" / "query_encoder" / "3" / "model.joblib").exists()
    assert (tmp_path / "models" / "fraud_scorer" / "1" / "meta.json").exists()
