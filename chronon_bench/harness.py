"""The ``make bench`` harness: P1 parse, P2 task-start parse, P3 deferred polling (P3b: partition
waits), P4 registration.

Each figure is measured in the same run as its baseline. Every subprocess gets a wall-clock bound
and is stopped by PID; the reference backend is started on a free loopback port and stopped at the
end. ``run(scale=...)`` is also what ``tests/test_bench_small.py`` calls at a tiny scale.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chronon_airflow.catalogs.local import LocalWarehouseCatalog
from chronon_airflow.plan import dag_id
from chronon_airflow.plan.model import JOIN_BACKFILL
from chronon_bench import generator
from chronon_demo.stack import free_port

if TYPE_CHECKING:
    from chronon_reference_backend.process import BackendProcess

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BASELINE_FILE = Path(__file__).with_name("baseline_dags.py")
PLAN_CACHE = "chronon_plan_cache"  # under the bench's AIRFLOW_HOME


@dataclass
class Scale:
    joins: int = generator.DEFAULT_JOINS
    group_bys: int = generator.DEFAULT_GROUP_BYS
    teams: int = generator.DEFAULT_TEAMS
    triggers: int = 1000  # P3 concurrent triggers
    registrations: int = 2000  # P4 joins registered
    latency_ms: int = 200  # P4 injected backend latency
    concurrency: int = 64  # P4 registration_concurrency
    repeats: int = 3  # P1/P2 subprocess runs per figure (the median is reported)
    p3_polls: int = 5  # polls per trigger in P3
    p3_interval: float = 1.0  # compressed poll interval in P3 (production default: 60 s)
    timeout: float = 900.0  # bound on any single subprocess
    # The growth curve: the parse figures and the dag-processor run at each of these join counts
    # (GroupBys = joins / 2, one team per 50 joins; ``joins`` itself uses group_bys and teams above).
    scales: tuple[int, ...] = (500, 2000, 10000)
    shards: int = 0  # DAG file shards; 0: one per SHARD_DAGS DAGs (README "Scale")
    parsing_processes: int = 2  # [dag_processor] parsing_processes of the end-to-end run
    e2e_timeout: float = 600.0  # bound on one dag-processor run


@dataclass
class Result:
    name: str
    measured: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    # How the table shows it (measured, baseline, ratio); the older figures format themselves.
    display: tuple[str, str, str] | None = None


def base_env(airflow_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        # Named here, so the cold parse below empties the folder the parses really use.
        "AIRFLOW__CHRONON__PLAN_CACHE_DIR": str(airflow_home / PLAN_CACHE),
        # The project's plugins folder, as a deployment has it (a task process inherits the loaded
        # plugins from the scheduler; see parse_probe._task_process_imports).
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        # Airflow's default 30 s import timeout would turn a slow parse into an import error and
        # hide the number we want; the ratio, not the absolute bound, is the target here.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0",
    })
    # A deployment imports compiled bytecode (pip writes it for Airflow and for us): a shell that
    # forbids .pyc files would make every parse recompile chronon_airflow and skew P1/P2.
    for k in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID", "PYTHONDONTWRITEBYTECODE"):
        env.pop(k, None)
    return env


def compile_package() -> None:
    """Bytecode for chronon_airflow, as an installed package has it (``__pycache__`` is gitignored)."""
    import compileall

    compileall.compile_dir(str(PROJECT_ROOT / "chronon_airflow"), quiet=1)


SHARD_DAGS = 1000  # DAGs per shard when --shards is not given (README "Scale")


def auto_shards(dags: int) -> int:
    return max(1, round(dags / SHARD_DAGS))


def run_probe(dag_files: Path | list[Path], env: dict[str, str], timeout: float) -> list[dict[str, Any]]:
    """Parse each file in a fork of one fresh interpreter (as the dag-processor does); returns the
    probe's JSON per file (see parse_probe)."""
    files = [dag_files] if isinstance(dag_files, Path) else list(dag_files)
    env = dict(env, _BENCH_SPAWNED_AT=repr(time.time()))
    proc = subprocess.Popen([sys.executable, "-m", "chronon_bench.parse_probe", *map(str, files)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=str(PROJECT_ROOT))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"parsing {files[0].parent} took more than {timeout:.0f} s") from None
    results = []
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT "):])
            if result.get("error") or result.get("import_errors"):
                raise RuntimeError(f"parsing {result['file']}: {result.get('error') or result['import_errors']}")
            results.append(result)
    if len(results) != len(files):
        raise RuntimeError(f"parse probe of {files[0].parent} failed (exit {proc.returncode}):\n{err[-4000:]}")
    return results


def _total(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One parse of a DAGs folder: the sums over its files (the largest file's figures beside)."""
    out: dict[str, Any] = {k: sum(r[k] for r in results) for k in ("parse_s", "serialize_s", "dags", "tasks", "edges")}
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    out["files"] = len(results)
    out["max_file_s"] = max(r["parse_s"] + r["serialize_s"] for r in results)
    out["max_file_dags"] = max(r["dags"] for r in results)
    return out


def baseline_spec(repo: Path) -> list[dict[str, Any]]:
    """dag_ids, task_ids and edges of the chronon plan (the same build_plan the DAG file uses)."""
    from chronon_airflow.deployment import Deployment
    from chronon_airflow.plan import load_plan

    _repo, plan = load_plan(repo, Deployment())  # the structure does not depend on the deployment
    return [{"dag_id": d.dag_id, "team": d.team, "schedule": d.schedule,
             "tasks": [{"task_id": t.task_id, "upstream": list(t.upstream)} for t in d.tasks]}
            for d in plan.dags]


def edit_join(repo: Path, n: int) -> str:
    """Change ONE compiled file: the first join's description (a new text each time, so no earlier
    cache state matches). That join feeds chained GroupBys (see the generator)."""
    path = next(iter(sorted((repo / "production" / "joins").rglob("mt_join_00000.v1"))))
    data = json.loads(path.read_text())
    data["metaData"]["description"] = f"Synthetic model-transform join 0, edit {n}."
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path.relative_to(repo).as_posix()


# --- P1, P5-P8: parse figures; P2 task start -------------------------------------------------------


def parse_figures(repo: Path, work: Path, scale: Scale, joins: int, log=print,
                  task_start: bool = False) -> tuple[list[Result], dict[str, Any]]:
    """At one scale: the cold parse, then ``repeats`` rounds of (baseline, warm parse, one file
    edited and parsed again, and with ``task_start`` a task-start parse), interleaved so drift on
    the machine hits every side alike. Ours is every shard file of the DAGs folder, each parsed in
    its own fork; the sums are compared with the single baseline file."""
    tag = f"{joins:,} joins"
    home = work / f"airflow_home_{joins}"
    home.mkdir(parents=True, exist_ok=True)
    env = base_env(home)
    env["AIRFLOW__CHRONON__REPO_PATH"] = str(repo)
    spec = baseline_spec(repo)
    spec_file = work / f"baseline_{joins}.json"
    spec_file.write_text(json.dumps(spec))
    shards = scale.shards or auto_shards(len(spec))
    from chronon_airflow.render.shards import dag_file_name, shard_of, write_dag_files

    ours_dir, base_dir = work / f"dags_chronon_{joins}", work / f"dags_baseline_{joins}"
    shutil.rmtree(ours_dir, ignore_errors=True)
    write_dag_files(ours_dir, shards)
    files = sorted(ours_dir.glob("chronon_dags*.py"))
    base_dir.mkdir(exist_ok=True)
    base = base_dir / "baseline_dags.py"
    shutil.copy(BASELINE_FILE, base)
    env_base = dict(env, BENCH_BASELINE_JSON=str(spec_file))

    # The first parse after the cache is emptied (a new deployment, a new environment) loads, plans,
    # renders and stores everything: the cold parse.
    shutil.rmtree(home / PLAN_CACHE, ignore_errors=True)
    log(f"[{tag}] cold parse of {len(spec):,} DAGs in {shards} shard files (empty cache)")
    cold = _total(run_probe(files, env, scale.timeout))
    # P2: the DAG a task start needs. The join backfill DAG is the biggest kind; one in the middle.
    join_prefix = dag_id(JOIN_BACKFILL, "")
    join_dags = [d for d in spec if d["dag_id"].startswith(join_prefix)]
    target = join_dags[len(join_dags) // 2]
    target_file = ours_dir / ("chronon_dags.py" if shards == 1
                              else dag_file_name(shard_of(target["team"], shards), shards))
    env_task = dict(env, _AIRFLOW_PARSING_CONTEXT_DAG_ID=target["dag_id"],
                    _AIRFLOW_PARSING_CONTEXT_TASK_ID=target["tasks"][-1]["task_id"])
    log(f"[{tag}] baseline, warm parse, edit + parse{', task start' if task_start else ''}: {scale.repeats} rounds")
    base_runs, sched_runs, warm_runs, edit_runs, task_runs = [], [], [], [], []
    env_sched = dict(env_base, BENCH_BASELINE_SCHEDULES="1")
    for k in range(max(1, scale.repeats)):
        base_runs.append(_total(run_probe(base, env_base, scale.timeout)))
        sched_runs.append(_total(run_probe(base, env_sched, scale.timeout)))
        warm_runs.append(_total(run_probe(files, env, scale.timeout)))
        edited = edit_join(repo, k)
        edit_runs.append(_total(run_probe(files, env, scale.timeout)))
        if task_start:
            task_runs.append(_total(run_probe(target_file, env_task, scale.timeout)))
    b, w, e, bs = _median(base_runs), _median(warm_runs), _median(edit_runs), _median(sched_runs)
    for side in (w, e, cold, bs):
        if (side["dags"], side["tasks"], side["edges"]) != (b["dags"], b["tasks"], b["edges"]):
            raise RuntimeError(f"baseline shape differs: ours {side['dags']}/{side['tasks']}/{side['edges']}, "
                               f"baseline {b['dags']}/{b['tasks']}/{b['edges']}")
    sizes = f"{b['dags']:,} DAGs, {b['tasks']:,} tasks; {shards} shard file{'s' * (shards > 1)}"
    bare = f"EmptyOperator file: parse {_f(b['parse_s'])} s"
    results = []

    def add(name: str, measured: dict, ratio: float, target: str, ok: bool | None, meas: str, base_text: str,
            ratio_text: str | None = None, baseline: dict | None = None) -> Result:
        r = Result(f"{name} ({tag})", measured, baseline or b, ratio, target, ok,
                   display=(meas, base_text, ratio_text or f"{ratio:.2f}x"))
        results.append(r)
        return r

    add("P1 warm re-parse", w, w["parse_s"] / b["parse_s"], "<= 1.25x", w["parse_s"] / b["parse_s"] <= 1.25,
        f"parse {_f(w['parse_s'])} s, peak RSS {_f(w['peak_rss_mb'], 0)} MB ({sizes})",
        f"{bare}, peak RSS {_f(b['peak_rss_mb'], 0)} MB")
    add("P5 cold parse", cold, cold["parse_s"] / b["parse_s"], "<= 1.25x", cold["parse_s"] / b["parse_s"] <= 1.25,
        f"parse {_f(cold['parse_s'])} s (empty cache), peak RSS {_f(cold['peak_rss_mb'], 0)} MB", bare)
    add("P6 edit re-parse", e, e["parse_s"] / b["parse_s"], "<= 1.25x", e["parse_s"] / b["parse_s"] <= 1.25,
        f"parse {_f(e['parse_s'])} s after {edited} changed", bare)
    both_w, both_b = w["parse_s"] + w["serialize_s"], b["parse_s"] + b["serialize_s"]
    add("P7 warm parse + serialize", w, both_w / both_b, "<= 1.0x", both_w / both_b <= 1.0,
        f"{_f(w['parse_s'])} + {_f(w['serialize_s'])} = {_f(both_w)} s",
        f"{_f(b['parse_s'])} + {_f(b['serialize_s'])} = {_f(both_b)} s")
    per_w, per_b = w["serialize_s"] / w["tasks"] * 1e3, b["serialize_s"] / b["tasks"] * 1e3
    add("P7b serialize per task", w, per_w / per_b, "<= 1.0x", per_w / per_b <= 1.0,
        f"{_f(per_w, 3)} ms/task", f"{_f(per_b, 3)} ms/task")
    # How much of P7b is scheduling itself: the bare graph with our schedules (Airflow converts and
    # compares each DAG's timetable and records its asset dependencies when it serializes).
    per_s = bs["serialize_s"] / bs["tasks"] * 1e3
    add("P7c serialize per task vs scheduled baseline", w, per_w / per_s, "(info)", None,
        f"{_f(per_w, 3)} ms/task", f"EmptyOperator file with our schedules: {_f(per_s, 3)} ms/task", baseline=bs)
    quarter = 50.0 / 4
    add("P8 largest shard, cold parse + serialize", cold, cold["max_file_s"], f"< {quarter} s",
        cold["max_file_s"] < quarter,
        f"{_f(cold['max_file_s'])} s ({cold['max_file_dags']:,} DAGs in the largest of {shards} files)",
        "dag_file_processor_timeout 50 s", f"{_f(cold['max_file_s'])} s")
    if task_runs:
        t = _median(task_runs)
        if t["dags"] != 1:
            raise RuntimeError(f"task-start parse built {t['dags']} DAGs, expected 1")
        ratio = t["parse_s"] / w["parse_s"]
        add("P2 task-start parse of 1 DAG", t, ratio, "<= 1/20 (0.05)", ratio <= 0.05,
            f"parse {_f(t['parse_s'], 3)} s, peak RSS {_f(t['peak_rss_mb'], 0)} MB",
            f"P1 parse {_f(w['parse_s'])} s", f"{ratio:.3f} (1/{1 / ratio:.0f})")
    info = {"env": env, "spec": spec, "shards": shards, "ours_dir": ours_dir, "base_dir": base_dir,
            "spec_file": spec_file, "home": home}
    return results, info


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(runs[0])
    for key in ("parse_s", "serialize_s", "peak_rss_mb", "max_file_s"):
        if key in out:
            out[key] = statistics.median(r[key] for r in runs)
    out["runs"] = len(runs)
    return out


# --- P9: the real dag-processor --------------------------------------------------------------------


def e2e(work: Path, scale: Scale, joins: int, info: dict[str, Any], log=print) -> list[Result]:
    """``airflow dag-processor`` from its start until every DAG is in a fresh metadata DB: ours with
    an empty cache (a first start) and with the cache of that run (a restart), against the
    baseline file; and, to tell what scheduling itself costs, the baseline file with our schedules."""
    from chronon_bench import dag_processor

    tag = f"{joins:,} joins"
    expected = len(info["spec"])
    env = dict(info["env"])
    env.pop("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", None)
    template = dag_processor.migrated_db(work, env)
    cache = work / f"e2e_cache_{joins}"
    shutil.rmtree(cache, ignore_errors=True)
    env["AIRFLOW__CHRONON__PLAN_CACHE_DIR"] = str(cache)
    log(f"[{tag}] dag-processor (parsing_processes {scale.parsing_processes}): baseline, ours cold, ours restart, "
        "scheduled baseline")

    def run(folder, name, e):
        return dag_processor.run(folder, expected, work, f"{name}_{joins}", e, template,
                                 scale.parsing_processes, scale.e2e_timeout, log)

    env_base = dict(env, BENCH_BASELINE_JSON=str(info["spec_file"]))
    bare = run(info["base_dir"], "baseline", env_base)
    cold = run(info["ours_dir"], "chronon_cold", env)
    warm = run(info["ours_dir"], "chronon_restart", env)
    scheduled = run(info["base_dir"], "baseline_scheduled", dict(env_base, BENCH_BASELINE_SCHEDULES="1"))

    def seconds(r: dict) -> str:
        return f"{_f(r['seconds'], 1)} s" if r["seconds"] is not None else \
            f"not done in {scale.e2e_timeout:.0f} s ({r['dags']:,}/{r['expected']:,} DAGs, " \
            f"{r['import_errors']} import errors)"

    def ratio_of(a: dict, b: dict) -> float | None:
        return a["seconds"] / b["seconds"] if a["seconds"] and b["seconds"] else None

    out = []
    for name, side, base, base_name, target in (
            ("P9 dag-processor first start", cold, bare, "EmptyOperator file", "<= 1.0x"),
            ("P9b dag-processor restart", warm, bare, "EmptyOperator file", "<= 1.0x"),
            ("P9c dag-processor first start vs scheduled baseline", cold, scheduled,
             "EmptyOperator file with our schedules", "(info)")):
        ratio = ratio_of(side, base)
        ok = side["seconds"] is not None and (base["seconds"] is None or (ratio is not None and ratio <= 1.0))
        out.append(Result(f"{name} ({tag})", side, base, ratio, target, ok if target != "(info)" else None, display=(
            f"all {expected:,} DAGs in the DB after {seconds(side)}, peak RSS {_f(side['peak_rss_mb'], 0)} MB "
            f"({info['shards']} files)",
            f"{base_name}: {seconds(base)}, peak RSS {_f(base['peak_rss_mb'], 0)} MB",
            f"{ratio:.2f}x" if ratio is not None else ("baseline never done" if side["seconds"] else "NOT DONE"))))
    return out


# --- the reference backend ---------------------------------------------------------------------


def start_reference_backend(repo: Path, work: Path) -> BackendProcess:
    """The reference backend for P3/P4, with its admin (fault) endpoints; ``stop()`` ends it by PID."""
    from chronon_reference_backend.process import start_backend

    # 120 s: the first start trains the repo's reference models.
    return start_backend(work / "backend_home", work / "warehouse", repo, free_port(), log=work / "backend.log",
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"), timeout=120.0)


def _join_paths(repo: Path, limit: int) -> list[str]:
    paths = sorted(p.relative_to(repo).as_posix() for p in (repo / "production" / "joins").rglob("*")
                   if p.is_file() and not p.name.startswith("."))
    return paths[:limit]


# --- P3 ----------------------------------------------------------------------------------------


def p3(backend: BackendProcess, repo: Path, scale: Scale, log=print) -> Result:
    """1,000 deferred ModelBatchJobSensors polling from one asyncio loop, versus poke mode."""
    from airflow.sdk.exceptions import TaskDeferred

    from chronon_airflow.backend.http import HttpModelBackend
    from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor

    ds = "2024-03-15"
    n = scale.triggers
    # Jobs that stay RUNNING/PENDING for the whole measurement (the backend holds each job this
    # long before working on it), over a few registered joins.
    backend.admin("POST", "/admin/faults", json={"job_delay_ms": 3_600_000})
    joins = [json.loads((repo / p).read_text()) for p in _join_paths(repo, min(10, n))]
    job_ids = []
    with HttpModelBackend(backend.url) as c:
        for j in joins:
            for t in j["modelTransforms"]["transforms"]:
                assert c.register_model(t["model"]).is_success
            r = c.register_model_transform(j)
            assert r.is_success, r.message
        for i in range(n):
            job_ids.append(c.run_model_batch_job(joins[i % len(joins)], ds, ds, f"bench-p3-{i}"))

    def sensor(i: int, deferrable: bool) -> ModelBatchJobSensor:
        return ModelBatchJobSensor(task_id=f"wait_{i}", job_id=job_ids[i], start_ds=ds, end_ds=ds,
                                   backend="reference", deferrable=deferrable,
                                   poke_interval=scale.p3_interval, timeout=3600)

    def polls() -> int:
        return backend.admin("GET", "/admin/faults")["requests"]

    # Baseline: classic poke mode. Each sensor holds a worker slot for the whole wait; measured here
    # is the CPU of one blocking poke per sensor (hook, client, request, close), in this process.
    log(f"P3: {n} blocking pokes (baseline)")
    sensors = [sensor(i, False) for i in range(n)]
    before, c0, w0 = polls(), time.process_time(), time.perf_counter()
    done = sum(1 for s in sensors if s.poke({}) is False)
    poke_cpu, poke_wall, poke_count = time.process_time() - c0, time.perf_counter() - w0, polls() - before
    if done != n:
        raise RuntimeError(f"{n - done} jobs ended during the poke baseline")

    # Deferrable: execute() checks once, then raises TaskDeferred (the worker slot is released).
    triggers = []
    for i in range(n):
        try:
            sensor(i, True).execute({})  # returning instead of deferring = a slot held to the end
        except TaskDeferred as d:
            triggers.append(d.trigger)
    log(f"P3: {len(triggers)} triggers polling every {scale.p3_interval} s for {scale.p3_polls} rounds")
    window = scale.p3_polls * scale.p3_interval

    async def run_all() -> tuple[float, float, int]:
        async def drain(t):
            async for event in t.run():
                return event
        tasks = [asyncio.ensure_future(drain(t)) for t in triggers]
        await asyncio.sleep(0.5 + scale.p3_interval)  # connect + first poll of all, not counted
        start_polls = polls()
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(window)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        count = polls() - start_polls
        ended = sum(1 for t in tasks if t.done())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Only /modelBackend/* requests are counted by the backend: the admin GETs are not polls.
        return cpu, wall, count if ended == 0 else -ended

    cpu, wall, count = asyncio.run(asyncio.wait_for(run_all(), timeout=window + 300))
    if count <= 0:
        raise RuntimeError(f"{-count} triggers ended during P3")
    per_poll = cpu / count
    share_60s = n * per_poll / 60.0  # cores used by n triggers at the production 60 s interval
    poke_per = poke_cpu / max(1, poke_count)
    res = Result(f"P3 {n:,} deferred batch-job waits", {
        "triggers": len(triggers), "polls": count, "window_s": wall, "cpu_s": cpu,
        "cpu_per_poll_ms": per_poll * 1e3, "core_share_at_60s_pct": share_60s * 100,
        "polls_per_s": count / wall, "worker_slots_held": n - len(triggers)},
        {"pokes": poke_count, "cpu_per_poke_ms": poke_per * 1e3, "wall_s": poke_wall,
         "core_share_at_60s_pct": n * poke_per / 60.0 * 100, "worker_slots_held": n},
        share_60s * 100, "<= 5% of a core, 0 slots")
    res.ok = share_60s <= 0.05 and res.measured["worker_slots_held"] == 0
    backend.admin("DELETE", "/admin/faults")
    return res


# --- P3b ---------------------------------------------------------------------------------------


class CountingLocalCatalog(LocalWarehouseCatalog):
    """The local catalog, counting its checks: P3b's poll count (the triggers find it by this
    dotted path, as they would a deployment's custom catalog)."""

    checks = 0

    def missing_partitions(self, *args: Any, **kwargs: Any) -> list[str]:
        type(self).checks += 1
        return super().missing_partitions(*args, **kwargs)

    async def amissing_partitions(self, *args: Any, **kwargs: Any) -> list[str]:
        type(self).checks += 1
        return await super().amissing_partitions(*args, **kwargs)


P3B_CATALOG = f"{__name__}.CountingLocalCatalog"


def p3b_warehouse(root: Path, tables: int, days: int, last_ds: str) -> None:
    """``tables`` tables with ``days`` committed partitions up to the day before ``last_ds`` (every
    fifth one partitioned by ``dt`` with an ``hr=00:00`` sub-partition): the waited-for ones are absent."""
    from chronon_airflow import warehouse
    from chronon_airflow.partitions import ds_add

    for t in range(tables):
        column, subs = ("dt", {"hr": "00:00"}) if t % 5 == 0 else ("ds", None)
        for d in range(1, days + 1):
            marker = warehouse.partition_path(root, f"bench_ns.table_{t}", ds_add(last_ds, -d), column, subs)
            marker.mkdir(parents=True, exist_ok=True)
            (marker / warehouse.SUCCESS_MARKER).touch()


def p3b(work: Path, scale: Scale, log=print) -> Result:
    """1,000 deferred ChrononPartitionSensors waiting on absent partitions of the local catalog,
    polling from one asyncio loop (the triggerer), versus poke mode."""
    from airflow.sdk.exceptions import TaskDeferred

    from chronon_airflow.sensors.partition import ChrononPartitionSensor

    ds, n, tables = "2024-03-15", scale.triggers, max(1, min(50, scale.triggers))
    root = work / "p3b_warehouse"
    p3b_warehouse(root, tables, 30, ds)
    saved = os.environ.get("AIRFLOW__CHRONON__WAREHOUSE")
    os.environ["AIRFLOW__CHRONON__WAREHOUSE"] = str(root)  # what the triggers' catalog reads

    def sensor(i: int, deferrable: bool) -> ChrononPartitionSensor:
        t = i % tables
        column, subs = ("dt", {"hr": "00:00"}) if t % 5 == 0 else ("ds", None)
        # A lag of -1..-3 waits for a later, absent partition; the range's own ds is absent too.
        return ChrononPartitionSensor(task_id=f"wait_{i}", table=f"bench_ns.table_{t}", start_ds=ds, end_ds=ds,
                                      lag_days=-(i % 4), partition_column=column, subpartitions=subs,
                                      catalog=P3B_CATALOG, deferrable=deferrable,
                                      poke_interval=scale.p3_interval, timeout=3600)

    try:
        # Baseline: poke mode. Each sensor holds a worker slot for the whole wait; measured here is
        # the CPU of one blocking poke per sensor (catalog, names, stat, log line), in this process.
        log(f"P3b: {n} blocking pokes (baseline)")
        sensors = [sensor(i, False) for i in range(n)]
        c0, w0 = time.process_time(), time.perf_counter()
        waiting = sum(1 for s in sensors if s.poke({}) is False)
        poke_cpu, poke_wall = time.process_time() - c0, time.perf_counter() - w0
        if waiting != n:
            raise RuntimeError(f"{n - waiting} partitions were present in the poke baseline")

        triggers = []
        for i in range(n):
            try:
                sensor(i, True).execute({})  # returning instead of deferring = a slot held to the end
            except TaskDeferred as d:
                triggers.append(d.trigger)
        log(f"P3b: {len(triggers)} partition triggers polling every {scale.p3_interval} s for "
            f"{scale.p3_polls} rounds")
        window = scale.p3_polls * scale.p3_interval

        async def run_all() -> tuple[float, float, int, int]:
            async def drain(t):
                async for event in t.run():
                    return event
            tasks = [asyncio.ensure_future(drain(t)) for t in triggers]
            await asyncio.sleep(0.5 + scale.p3_interval)  # the first check of all, not counted
            start = CountingLocalCatalog.checks
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(window)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            count = CountingLocalCatalog.checks - start
            ended = sum(1 for t in tasks if t.done())
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return cpu, wall, count, ended

        cpu, wall, count, ended = asyncio.run(asyncio.wait_for(run_all(), timeout=window + 300))
    finally:
        if saved is None:
            os.environ.pop("AIRFLOW__CHRONON__WAREHOUSE", None)
        else:
            os.environ["AIRFLOW__CHRONON__WAREHOUSE"] = saved
    if ended or count <= 0:
        raise RuntimeError(f"{ended} partition triggers ended during P3b ({count} checks counted)")
    per_poll = cpu / count
    share_60s = n * per_poll / 60.0  # cores used by n triggers at a 60 s poll interval
    poke_per = poke_cpu / max(1, n)
    res = Result(f"P3b {n:,} partition waits", {
        "triggers": len(triggers), "polls": count, "window_s": wall, "cpu_s": cpu,
        "cpu_per_poll_ms": per_poll * 1e3, "core_share_at_60s_pct": share_60s * 100,
        "polls_per_s": count / wall, "worker_slots_held": n - len(triggers), "catalog": "local"},
        {"pokes": n, "cpu_per_poke_ms": poke_per * 1e3, "wall_s": poke_wall,
         "core_share_at_60s_pct": n * poke_per / 60.0 * 100, "worker_slots_held": n},
        share_60s * 100, "<= 5% of a core, 0 slots")
    res.ok = share_60s <= 0.05 and res.measured["worker_slots_held"] == 0
    return res


# --- P4 ----------------------------------------------------------------------------------------


def p4(backend: BackendProcess, repo: Path, scale: Scale, log=print) -> Result:
    from chronon_airflow.operators.metadata_upload import RegisterTeamModelTransformsOperator

    paths = _join_paths(repo, scale.registrations)
    backend.admin("POST", "/admin/faults", json={"latency_ms": scale.latency_ms})
    try:
        log(f"P4: registering {len(paths)} joins, {scale.latency_ms} ms latency, concurrency {scale.concurrency}")
        op = RegisterTeamModelTransformsOperator(task_id="bench_register", repo_root=str(repo), join_paths=paths,
                                                 concurrency=scale.concurrency, notify=False)
        before = backend.admin("GET", "/admin/faults")["requests"]
        c0, w0 = time.process_time(), time.perf_counter()
        summary = op.execute({})
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        calls = backend.admin("GET", "/admin/faults")["requests"] - before
    finally:
        backend.admin("DELETE", "/admin/faults")
    registered = len(summary["registered"])
    # The floor with this concurrency: every call waits the injected latency.
    floor = calls * scale.latency_ms / 1000.0 / scale.concurrency
    res = Result("P4 metadata-upload registration", {
        "joins": len(paths), "registered": registered, "failed": len(summary["failed"]), "calls": calls,
        "wall_s": wall, "client_cpu_s": cpu, "concurrency": scale.concurrency, "latency_ms": scale.latency_ms},
        {"latency_floor_s": floor, "serial_s": calls * scale.latency_ms / 1000.0}, wall, "<= 60 s")
    res.ok = wall <= 60 and registered == len(paths)
    return res


# --- the run -----------------------------------------------------------------------------------


def scale_shape(scale: Scale, joins: int) -> tuple[int, int, int]:
    """(joins, GroupBys, teams) of the repo at ``joins``: the main scale as given, the growth curve's
    others with the main scale's shape (2 joins per GroupBy, 50 joins per team)."""
    if joins == scale.joins:
        return scale.joins, scale.group_bys, scale.teams
    return joins, joins // 2, max(1, joins // 50)


@contextlib.contextmanager
def task_logs_in(path: Path, log=print):
    """Send the log lines the sensors, triggers and operators write while P3, P3b and P4 run (one
    per poke or poll: thousands) to ``path`` instead of the terminal, as a triggerer's and a
    worker's go to their log files; writing them stays part of what is measured."""
    log(f"the sensors' and triggers' own log lines go to {path}")
    with path.open("a") as f, contextlib.redirect_stdout(f):
        yield


def run(scale: Scale, work: Path | None = None, repo: Path | None = None, parts: str = "1234e",
        log=print) -> dict[str, Any]:
    """Generate the repos (unless given), run the chosen figures, return machine + results.

    ``parts``: 1 the parse figures (P1, P5-P8) at every scale of ``scale.scales``, e the
    dag-processor end to end (P9) at each, 2 the task-start parse, 3 and 4 as before at the main
    scale (``scale.joins``); b P3b alone."""
    work = Path(work or tempfile.mkdtemp(prefix="chronon-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    main_repo = repo
    if any(part in parts for part in "12e"):
        compile_package()
        sizes = sorted({*scale.scales, scale.joins}) if ("1" in parts or "e" in parts) else [scale.joins]
        for joins in sizes:
            at = repo if (repo is not None and joins == scale.joins) else None
            if at is None:
                n, g, t = scale_shape(scale, joins)
                at = work / f"repo_{joins}"
                log(f"generating {n:,} joins, {g:,} chained GroupBys, {t} teams in {at}")
                generator.generate(at, n, g, t)
            if joins == scale.joins:
                main_repo = at
            figures, info = parse_figures(at, work, scale, joins, log, task_start="2" in parts and joins == scale.joins)
            if "1" in parts or joins == scale.joins:
                results.extend(r for r in figures if "1" in parts or r.name.startswith("P2"))
            if "e" in parts:
                results.extend(e2e(work, scale, joins, info, log))
    repo = main_repo
    if repo is None and any(part in parts for part in "34"):
        repo = work / "repo"
        log(f"generating {scale.joins} joins, {scale.group_bys} chained GroupBys, {scale.teams} teams in {repo}")
        generator.generate(repo, scale.joins, scale.group_bys, scale.teams)
    if "b" in parts and "3" not in parts:
        # P3b alone ("--parts b"): partition waits on the local catalog need no backend.
        os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow_home"))
        os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        with task_logs_in(work / "task_logs.log", log):
            results.append(p3b(work, scale, log))
    if "3" in parts or "4" in parts:
        # The harness process plays the triggerer / worker: Airflow reads its home from here.
        os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow_home"))
        os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        assert repo is not None  # given, or generated above
        backend = start_reference_backend(repo, work)
        # The documented env-var connection of backend "reference". One attempt per call: a
        # retried request would count as a second poll and blur the numbers.
        conn_env = {"AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE": backend.connection(max_attempts=1, timeout=60)}
        saved = {k: os.environ.get(k) for k in conn_env}
        os.environ.update(conn_env)
        try:
            with task_logs_in(work / "task_logs.log", log):
                if "3" in parts:
                    results.append(p3(backend, repo, scale, log))
                    results.append(p3b(work, scale, log))
                if "4" in parts:
                    results.append(p4(backend, repo, scale, log))
        finally:
            backend.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return {"machine": machine(), "scale": scale.__dict__, "results": [r.__dict__ for r in results],
            "work": str(work)}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import platform

    import airflow

    return {"cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "airflow": airflow.__version__, "os": platform.platform()}


def _f(v: Any, nd: int = 2) -> str:
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def table(report: dict[str, Any]) -> str:
    rows = [("figure", "measured", "baseline (same run)", "ratio / value", "target", "ok")]
    for r in report["results"]:
        m, b, name = r["measured"], r["baseline"], r["name"]
        if r.get("display"):
            meas, base, ratio = r["display"]
        elif name.startswith("P3b"):
            meas = (f"{m['triggers']} triggers on the {m['catalog']} catalog, {m['polls']} polls in "
                    f"{_f(m['window_s'], 1)} s: {_f(m['cpu_per_poll_ms'], 3)} ms CPU/poll, "
                    f"{m['worker_slots_held']} slots held")
            base = (f"poke mode: {_f(b['cpu_per_poke_ms'], 3)} ms CPU/poke, {_f(b['core_share_at_60s_pct'])}% core "
                    f"at 60 s, {b['worker_slots_held']} slots held")
            ratio = f"{r['ratio']:.2f}% of a core at 60 s"
        elif name.startswith("P3"):
            meas = (f"{m['triggers']} triggers, {m['polls']} polls in {_f(m['window_s'], 1)} s: "
                    f"{_f(m['cpu_per_poll_ms'], 3)} ms CPU/poll, {m['worker_slots_held']} slots held")
            base = (f"poke mode: {_f(b['cpu_per_poke_ms'], 3)} ms CPU/poke, {_f(b['core_share_at_60s_pct'])}% core "
                    f"at 60 s, {b['worker_slots_held']} slots held")
            ratio = f"{r['ratio']:.2f}% of a core at 60 s"
        else:
            meas = (f"{m['registered']}/{m['joins']} joins, {m['calls']} calls in {_f(m['wall_s'], 1)} s "
                    f"(concurrency {m['concurrency']}, {m['latency_ms']} ms latency)")
            base = f"latency floor {_f(b['latency_floor_s'], 1)} s, serial {_f(b['serial_s'], 0)} s"
            ratio = f"{_f(m['wall_s'], 1)} s"
        rows.append((name, meas, base, ratio, r["target"], "-" if r["ok"] is None else "yes" if r["ok"] else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows[1:]]
    mc = report["machine"]
    out.append(f"\nmachine: {mc['cpu']}, {mc['cores']} cores, {mc['mem_gib']} GiB; Python {mc['python']}, "
               f"Airflow {mc['airflow']}")
    return "\n".join(out)
