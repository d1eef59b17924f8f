"""Oracle: which Airflow tasks upstream Chronon would schedule for a compiled Chronon repo.

This is our own pure-Python re-implementation (no Airflow import) of the scheduling rules in
airbnb/chronon ``airflow/helpers.py``: ``should_schedule``, ``requires_streaming_task``,
``requires_log_flattening_task``, ``get_offline_schedule``, ``normalize_name``, ``dag_names`` and
``task_names``, plus the file walk of ``walk_and_define_tasks``. Tests compare the package's DAGs
against :func:`upstream_schedule`.

Upstream's quirks, kept on purpose (this is an oracle of what upstream does, not of what it means):

- GroupBy streaming: ``online and (metaData.accuracy == 0 or a source has topic/mutationTopic)``.
  Upstream reads ``accuracy`` from ``metaData``, where the thrift schema has no such field (it lives
  on the GroupBy), so the default 1 always wins: only a topic or mutationTopic makes a streaming
  task. A TEMPORAL GroupBy over a JoinSource (no topic of its own) gets no streaming task.
  :func:`accuracy_quirk_confs` lists the GroupBys for which this matters.
- GroupBy backfill: any ``backfillStartDate``, online or not. Upload: ``metaData.online == 1``.
- Join consistency-metrics-compute: ``json.loads(metaData.customJson)["check_consistency"] is True``,
  whether or not the join is online. A join without customJson raises KeyError, as upstream would.
- Join log-flattener: ``metaData.samplePercent > 0``, whether or not the join is online.
- Join backfill and stats-summary: every join unless ``offlineSchedule == "@never"``.
- Join metadata-upload: every join, all in DAG ``chronon_metadata_upload`` with the same task id
  ``chronon_join_metadata_upload`` (upstream would hit a duplicate task id with two joins; we still
  return one row per join).
- Staging queries: backfill only. Label joins (``label-join`` mode) and model transforms are not
  scheduled by upstream at all.
- Upstream's shipped DAG constructors only walk group_bys (streaming, backfill, upload), joins
  (backfill), joins (consistency-metrics-compute) and staging_queries (backfill); stats-summary,
  log-flattener and metadata-upload have rules and names but no constructor. We report all of them.
- A file is skipped if it is not JSON or lacks ``metaData.name``/``metaData.team``.

Run ``python tests/corpus/upstream_rules.py <repo_root> [--json]`` for a summary table.
"""
from __future__ import annotations

import json
import os
import re
import sys

# constants.time_parts upstream: partition-spec parts dropped from task names.
TIME_PARTS = ("ds", "ts", "hr")

# Modes per conf type, in the order upstream's helpers list them.
MODES = {
    "joins": ("backfill", "stats-summary", "consistency-metrics-compute", "log-flattener", "metadata-upload"),
    "group_bys": ("upload", "backfill", "streaming"),
    "staging_queries": ("backfill",),
}


def normalize_name(object_name: str) -> str:
    """Drop ``ds=``/``ts=``/``hr=`` path parts, join the rest with ``__``, and replace any other
    character outside ``[A-Za-z0-9_]`` with ``__``."""
    def safe_part(p: str) -> bool:
        return not any(p.startswith(f"{time_part}=") for time_part in TIME_PARTS)

    safe_name = "__".join(filter(safe_part, object_name.split("/")))
    return re.sub("[^A-Za-z0-9_]", "__", safe_name)


def sanitize(name: str) -> str:
    """api.Extensions.scala: non-``[a-zA-Z0-9_]`` become ``_``."""
    return re.sub("[^a-zA-Z0-9_]", "_", name)


def output_table(meta_data: dict) -> str:
    return f"{meta_data['outputNamespace']}.{sanitize(meta_data['name'])}"


def logged_table(meta_data: dict) -> str:
    return output_table(meta_data) + "_logged"


def requires_log_flattening_task(conf: dict) -> bool:
    return conf["metaData"].get("samplePercent", 0) > 0


def get_offline_schedule(conf: dict) -> str | None:
    schedule_interval = conf["metaData"].get("offlineSchedule", "@daily")
    if schedule_interval == "@never":
        return None
    return schedule_interval


def requires_frontfill(conf: dict) -> bool:
    return get_offline_schedule(conf) is not None


def requires_streaming_task(conf: dict, conf_type: str) -> bool:
    """A GroupBy source with a topic (events) or mutationTopic (entities)."""
    if conf_type == "group_bys":
        return any(
            source.get("entities", {}).get("mutationTopic") is not None
            or source.get("events", {}).get("topic") is not None
            for source in conf["sources"]
        )
    return False


def should_schedule(conf: dict, mode: str, conf_type: str) -> bool:
    """Whether upstream defines a task for this conf and mode (None-ish results become False)."""
    if conf_type == "group_bys":
        if mode == "backfill":
            return conf.get("backfillStartDate") is not None
        if mode == "upload":
            return conf["metaData"].get("online", 0) == 1
        if mode == "streaming":
            online = conf["metaData"].get("online", 0) == 1
            streaming = requires_streaming_task(conf, conf_type)
            # Upstream quirk: accuracy is read from metaData (never present), not from the GroupBy.
            return online and (conf["metaData"].get("accuracy", 1) == 0 or streaming)
        return False
    if conf_type == "joins":
        if mode == "metadata-upload":
            return True
        if mode == "backfill":
            return requires_frontfill(conf)
        if mode == "stats-summary":
            return requires_frontfill(conf)
        if mode == "consistency-metrics-compute":
            custom_json = json.loads(conf["metaData"]["customJson"])
            return custom_json.get("check_consistency") is True
        if mode == "log-flattener":
            return requires_log_flattening_task(conf)
        return False
    if conf_type == "staging_queries":
        return mode == "backfill"
    return False


def dag_names(conf: dict, mode: str, conf_type: str) -> str:
    if conf_type == "joins" and mode == "metadata-upload":
        return "chronon_metadata_upload"
    if mode == "metadata-export":
        return "chronon_ums_metadata_export"
    team = conf["metaData"]["team"]
    name = normalize_name(conf["metaData"]["name"])
    if conf_type == "group_bys":
        if mode in ("upload", "backfill"):
            return f"chronon_group_by_batch_{team}"
        if mode == "streaming":
            return f"chronon_group_by_streaming_{team}"
    if conf_type == "joins":
        if mode == "backfill":
            return f"chronon_join_{name}"
        if mode == "stats-summary":
            return "chronon_stats_compute"
        if mode == "log-flattener":
            return f"chronon_log_flattening_{team}"
        if mode == "consistency-metrics-compute":
            return f"chronon_online_offline_comparison_{name}"
    if conf_type == "staging_queries":
        if mode == "backfill":
            return f"chronon_staging_query_batch_{team}"
    raise ValueError(f"Unable to define proper DAG name: conf_type {conf_type}, mode {mode}, "
                     f"conf {conf['metaData'].get('name')}")


def task_names(conf: dict, mode: str, conf_type: str) -> str:
    if conf_type == "joins" and mode == "metadata-upload":
        return "chronon_join_metadata_upload"
    name = normalize_name(conf["metaData"]["name"])
    if conf_type == "group_bys":
        if mode == "upload":
            return f"group_by_batch__{name}"
        if mode == "backfill":
            return f"group_by_batch_backfill__{name}"
        if mode == "streaming":
            return f"group_by_streaming__{name}"
    if conf_type == "joins":
        if mode == "backfill":
            return f"compute_join__{name}"
        if mode == "consistency-metrics-compute":
            return f"compute_consistency__{name}"
        if mode == "stats-summary":
            return f"feature_stats__{name}"
        if mode == "log-flattener":
            return f"log_flattening__{name}"
    if conf_type == "staging_queries":
        if mode == "backfill":
            return f"staging_query__{name}"
    raise ValueError(f"Unable to define proper task name: conf_type {conf_type}, mode {mode}, "
                     f"conf {conf['metaData'].get('name')}")


def load_confs(repo_root: str, conf_type: str) -> list[tuple[str, dict]]:
    """(path relative to repo_root, conf) for each compiled file upstream's walk would accept,
    sorted by path (upstream walks in os.walk order)."""
    base = os.path.join(repo_root, "production", conf_type)
    found = []
    for root, _dirs, files in os.walk(base):
        for file_name in files:
            full_path = os.path.join(root, file_name)
            try:
                with open(full_path) as infile:
                    conf = json.load(infile)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # upstream: "Ignoring invalid json file"
            meta = conf.get("metaData", {}) if isinstance(conf, dict) else {}
            if meta.get("name") is None or meta.get("team") is None:
                continue  # upstream: "does not have required metaData"
            found.append((os.path.relpath(full_path, repo_root), conf))
    return sorted(found, key=lambda pc: pc[0])


def upstream_schedule(repo_root) -> list[dict]:
    """One row per (compiled conf, mode) upstream would schedule:
    ``{"conf_type", "mode", "name", "path", "dag", "task"}``, ordered by conf type, mode, path."""
    repo_root = os.fspath(repo_root)
    rows = []
    for conf_type, modes in MODES.items():
        confs = load_confs(repo_root, conf_type)
        for mode in modes:
            for path, conf in confs:
                if should_schedule(conf, mode, conf_type):
                    rows.append({
                        "conf_type": conf_type,
                        "mode": mode,
                        "name": conf["metaData"]["name"],
                        "path": path,
                        "dag": dag_names(conf, mode, conf_type),
                        "task": task_names(conf, mode, conf_type),
                    })
    return rows


def accuracy_quirk_confs(repo_root) -> list[str]:
    """Online TEMPORAL (accuracy 0) GroupBys without a topic: upstream gives them no streaming task
    only because it reads accuracy from metaData."""
    out = []
    for path, conf in load_confs(os.fspath(repo_root), "group_bys"):
        if (conf["metaData"].get("online", 0) == 1 and conf.get("accuracy") == 0
                and not requires_streaming_task(conf, "group_bys")):
            out.append(path)
    return out


def summary(rows: list[dict]) -> list[tuple[str, str, int, int]]:
    """(conf_type, mode, tasks, distinct DAGs) for every mode, zero counts included."""
    out = []
    for conf_type, modes in MODES.items():
        for mode in modes:
            picked = [r for r in rows if r["conf_type"] == conf_type and r["mode"] == mode]
            out.append((conf_type, mode, len(picked), len({r["dag"] for r in picked})))
    return out


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 1:
        print("usage: upstream_rules.py REPO_ROOT [--json]", file=sys.stderr)
        return 2
    repo_root = args[0]
    rows = upstream_schedule(repo_root)
    if "--json" in argv:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    confs = {t: len(load_confs(repo_root, t)) for t in MODES}
    print(f"{repo_root}: " + ", ".join(f"{n} {t}" for t, n in confs.items()))
    print(f"{'conf_type':<16} {'mode':<28} {'tasks':>5} {'dags':>5}")
    for conf_type, mode, n_tasks, n_dags in summary(rows):
        print(f"{conf_type:<16} {mode:<28} {n_tasks:>5} {n_dags:>5}")
    print(f"{'total':<16} {'':<28} {len(rows):>5} {len({r['dag'] for r in rows}):>5}")
    quirk = accuracy_quirk_confs(repo_root)
    if quirk:
        print(f"online TEMPORAL GroupBys without a topic (no streaming task upstream): {', '.join(quirk)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
