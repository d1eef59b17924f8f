"""``python -m chronon_bench`` (``make bench``): generate the scale repos, run the parse figures
(P1 warm, P5 cold, P6 edit, P7 parse + serialize, P8 largest shard) and the real dag-processor
(P9) at every scale of the growth curve, and P2–P4 (P3 with P3b, the partition waits) at the main
scale; print the table; ``--json FILE`` also writes the raw numbers."""
from __future__ import annotations

import argparse
import json
import sys
import time

from chronon_bench.harness import Scale, run, table


def main(argv: list[str] | None = None) -> int:
    d = Scale()
    p = argparse.ArgumentParser(prog="python -m chronon_bench")
    p.add_argument("--joins", type=int, default=d.joins)
    p.add_argument("--group-bys", type=int, default=d.group_bys)
    p.add_argument("--teams", type=int, default=d.teams)
    p.add_argument("--triggers", type=int, default=d.triggers)
    p.add_argument("--registrations", type=int, default=d.registrations)
    p.add_argument("--latency-ms", type=int, default=d.latency_ms)
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="registration_concurrency for P4")
    p.add_argument("--repeats", type=int, default=d.repeats, help="P1/P2 runs per side (median)")
    p.add_argument("--p3-polls", type=int, default=d.p3_polls)
    p.add_argument("--p3-interval", type=float, default=d.p3_interval)
    p.add_argument("--scales", default=",".join(map(str, d.scales)),
                   help="join counts of the growth curve (parse figures and dag-processor), e.g. 500,2000")
    p.add_argument("--shards", type=int, default=d.shards,
                   help="DAG file shards (0: one per 1,000 DAGs)")
    p.add_argument("--parsing-processes", type=int, default=d.parsing_processes)
    p.add_argument("--e2e-timeout", type=float, default=d.e2e_timeout)
    p.add_argument("--parts", default="1234e",
                   help="which figures: 1 parse figures at every scale, e dag-processor at every scale, 2 task start, "
                        "3 P3 + P3b, 4 P4 (main scale); b runs P3b alone (no backend)")
    p.add_argument("--work", help="work folder (default: a new temp folder)")
    p.add_argument("--repo", help="use this compiled repo instead of generating one")
    p.add_argument("--json", help="write the raw results here")
    a = p.parse_args(argv)
    scale = Scale(joins=a.joins, group_bys=a.group_bys, teams=a.teams, triggers=a.triggers,
                  registrations=a.registrations, latency_ms=a.latency_ms, concurrency=a.concurrency,
                  repeats=a.repeats, p3_polls=a.p3_polls, p3_interval=a.p3_interval,
                  scales=tuple(int(x) for x in a.scales.split(",") if x.strip()), shards=a.shards,
                  parsing_processes=a.parsing_processes, e2e_timeout=a.e2e_timeout)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    from pathlib import Path

    report = run(scale, Path(a.work) if a.work else None, Path(a.repo) if a.repo else None, a.parts, log)
    print(table(report))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2, default=str))
    return 0 if all(r["ok"] is not False for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
