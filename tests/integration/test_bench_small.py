"""The scale benchmark's own code at a tiny scale: a correctness test, never a timing test.

The generator's output must load with zero errors and plan the expected DAGs; P1/P2 must parse the
real DAG file and its EmptyOperator baseline (same dag_ids, tasks and edges — the harness checks
that) and yield numbers; P4 must register every join through RegisterTeamModelTransformsOperator.
"""
from __future__ import annotations

import json
import math

from chronon_airflow.config import load_repo
from chronon_airflow.plan import build_plan
from chronon_bench import generator
from chronon_bench.harness import Scale, run

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


def test_harness_runs_every_figure_at_tiny_scale(tmp_path, capsys):
    """Parse figures (cold, warm, edit, parse + serialize, largest shard) over two shard files, the
    task start, the real dag-processor end to end, and P4 (its operator's log lines in the work
    folder's task log, not on the terminal)."""
    scale = Scale(**TINY, scales=(12,), shards=2, registrations=12, latency_ms=20, concurrency=4, repeats=1,
                  timeout=300, e2e_timeout=300)
    report = run(scale, work=tmp_path, parts="124e", log=lambda *_: None)
    task_log = (tmp_path / "task_logs.log").read_text()
    assert "RegisterTeamModelTransformsOperator" in task_log
    assert "RegisterTeamModelTransformsOperator" not in capsys.readouterr().out
    by = {r["name"].split(" (")[0]: r for r in report["results"]}
    assert set(by) == {"P1 warm re-parse", "P5 cold parse", "P6 edit re-parse", "P7 warm parse + serialize",
                       "P7b serialize per task", "P7c serialize per task vs scheduled baseline",
                       "P8 largest shard, cold parse + serialize",
                       "P2 task-start parse of 1 DAG", "P9 dag-processor first start", "P9b dag-processor restart",
                       "P9c dag-processor first start vs scheduled baseline", "P4 metadata-upload registration"}
    p1 = by["P1 warm re-parse"]
    assert p1["measured"]["dags"] == p1["baseline"]["dags"] == generator.expected_dag_count(**TINY)
    assert p1["measured"]["tasks"] == p1["baseline"]["tasks"] > 0 and p1["measured"]["files"] == 2
    for name in ("P1 warm re-parse", "P5 cold parse", "P6 edit re-parse", "P7 warm parse + serialize",
                 "P7b serialize per task", "P7c serialize per task vs scheduled baseline",
                 "P2 task-start parse of 1 DAG"):
        assert math.isfinite(by[name]["ratio"]) and by[name]["ratio"] > 0, name
    assert by["P2 task-start parse of 1 DAG"]["measured"]["dags"] == 1
    for name in ("P9 dag-processor first start", "P9b dag-processor restart",
                 "P9c dag-processor first start vs scheduled baseline"):
        e2e = by[name]
        assert e2e["measured"]["seconds"] and e2e["baseline"]["seconds"], e2e
        assert e2e["measured"]["dags"] == e2e["baseline"]["dags"] == generator.expected_dag_count(**TINY)
        assert e2e["measured"]["peak_rss_mb"] > 0 and e2e["measured"]["import_errors"] == 0
    p4 = by["P4 metadata-upload registration"]
    assert p4["measured"]["registered"] == p4["measured"]["joins"] == 12
    assert p4["measured"]["failed"] == 0
    assert report["machine"]["cores"] >= 1
    from chronon_bench.harness import table

    assert "P9 dag-processor first start" in table(report)


def test_serialize_ablation_at_a_tiny_scale():
    """The P7b ablation runs end to end (its own Airflow home, a generated repo) and prints a row
    per set; every feature it takes off changed the serialized DAGs, or it would have failed."""
    import subprocess
    import sys

    from chronon_bench.serialize_ablation import strips

    out = subprocess.run([sys.executable, "-m", "chronon_bench.serialize_ablation", "--joins", "12", "--group-bys",
                          "7", "--teams", "3", "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    sets, per_task = out.stdout.split("\n\n")
    rows = {line[2:42].strip(): line[42:].split() for line in sets.splitlines()[2:]}
    expected = ["bare", "bare with our schedules", "ours", *(f"ours without {n}" for n in strips()),
                "ours without all of the above"]
    assert list(rows) == expected, out.stdout
    assert all(float(r[0]) > 0 for r in rows.values()) and rows["bare"][1] == "1.00x"
    assert out.stdout.startswith(f"{generator.expected_dag_count(**TINY)} DAGs, ")
    # The per-task table: a row per operator class the repo's DAGs use, their tasks adding up.
    classes = {line.split()[0]: line.split()[1:] for line in per_task.splitlines()[2:]}
    assert {"ChrononPartitionSensor", "ChrononSparkSubmitOperator", "ModelBatchInferenceOperator"} <= set(classes)
    tasks = int(sets.split(" DAGs, ")[1].split(" tasks")[0].replace(",", ""))
    assert sum(int(r[0]) for r in classes.values()) == tasks, out.stdout
    assert all(float(r[1]) > 0 and float(r[3]) > 0 for r in classes.values()), per_task


def test_serialize_ablation_refuses_a_feature_that_changes_nothing(tmp_path, monkeypatch):
    import pytest

    from chronon_bench import serialize_ablation

    generator.generate(tmp_path / "repo", **TINY)
    monkeypatch.setenv("AIRFLOW__CHRONON__PLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(serialize_ablation, "strips", lambda: {"nothing": lambda dag: None})
    with pytest.raises(RuntimeError, match="taking off 'nothing' does not change the serialized DAGs"):
        serialize_ablation.measure(tmp_path / "repo", tmp_path, rounds=1)


def test_timetable_cost_reproduction_runs():
    """The upstream reproduction (docs/upstream/serializer-timetable-cost.md) runs on this Airflow and
    prints every row with a time: the Airflow calls it names still exist."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "chronon_bench.timetable_cost", "--scale", "0.01"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Airflow ") and len(lines) == 7, out.stdout
    assert all(float(line.rsplit(None, 1)[1]) > 0 for line in lines[1:]), out.stdout
