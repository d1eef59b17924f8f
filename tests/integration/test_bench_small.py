"""The scale benchmark's own code at a tiny scale: a correctness test, never a timing test.

The generator's output must load with zero errors and plan the expected DAGs; P1/P2 must parse the
real DAG file and its EmptyOperator baseline (same dag_ids, tasks and edges — the harness checks
that) and yield numbers; P4 must register every join through RegisterTeamModelTransformsOperator.
"""
from __future__ import annotations

import json
import math

from chronon_bench import generator
from chronon_bench.harness import Scale, run
from chronon_airflow.config import load_repo
from chronon_airflow.plan import build_plan

TINY = dict(joins=12, group_bys=7, teams=3)


def test_generator_is_deterministic_and_loads_clean(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generator.generate(a, **TINY)
    generator.generate(b, **TINY)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)

    repo = load_repo(a)
    assert repo.errors == ()
    assert (len(repo.joins), len(repo.group_bys), len(repo.teams)) == (12, 7, 4)  # + "default"
    plan = build_plan(repo)
    assert plan.errors == ()
    assert len(plan.dags) == generator.expected_dag_count(**TINY)
    for join in repo.joins.values():
        assert len(join.models) in (1, 2, 3) and len(join.metadata.dependencies) in (1, 2, 3, 4)
        assert join.backends == ("reference",)
    # The compiled format: dependencies and customJson are JSON strings inside the JSON.
    raw = json.loads(next((a / "production" / "joins").rglob("*.v1")).read_text())
    assert all(isinstance(d, str) for d in raw["metaData"]["dependencies"])
    assert isinstance(raw["metaData"]["customJson"], str) and raw["metaData"]["online"] in (0, 1)


def test_harness_runs_p1_p2_p4_at_tiny_scale(tmp_path):
    scale = Scale(**TINY, registrations=12, latency_ms=20, concurrency=4, repeats=1, timeout=120)
    report = run(scale, work=tmp_path, parts="124", log=lambda *_: None)
    by = {r["name"][:2]: r for r in report["results"]}
    p1, p2, p4 = by["P1"], by["P2"], by["P4"]
    assert p1["measured"]["dags"] == p1["baseline"]["dags"] == generator.expected_dag_count(**TINY)
    assert p1["measured"]["tasks"] == p1["baseline"]["tasks"] > 0
    for value in (p1["ratio"], p1["measured"]["parse_s"], p1["measured"]["peak_rss_mb"], p2["ratio"]):
        assert math.isfinite(value) and value > 0
    assert p2["measured"]["dags"] == 1
    assert p4["measured"]["registered"] == p4["measured"]["joins"] == 12
    assert p4["measured"]["failed"] == 0
    assert report["machine"]["cores"] >= 1
