"""Print the latest result per (scenario, n) from bench/results/results.jsonl as a Markdown table.

    python bench/table.py [results.jsonl]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "results.jsonl"
latest: dict[tuple[str, int], dict] = {}
for line in path.read_text().splitlines():
    if line.strip():
        r = json.loads(line)
        latest[(r["scenario"], r["n"])] = r
order = ["validate", "plan", "plan-1pct", "apply-create", "apply-update-delete", "ansible-plan", "ansible-apply-create"]
print("| scenario | N | wall s | CPU s | peak RSS MB | API calls (by kind) | minimum | ideal s | wall/ideal | emulator CPU s | load 1m | vs Ansible |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (scenario, n), r in sorted(latest.items(), key=lambda kv: (order.index(kv[0][0]) if kv[0][0] in order else 99, kv[0][1])):
    api = r["api_calls"]
    kinds = ", ".join(f"{k} {v}" for k, v in api.items() if k != "total") or "none"
    ratio = ""
    base = {"plan": "ansible-plan", "apply-create": "ansible-apply-create"}.get(scenario)
    if base and (base, n) in latest:
        ratio = f"{latest[(base, n)]['wall_s'] / r['wall_s']:.0f}x faster"
    print(f"| {scenario} | {n:,} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {api['total']} ({kinds}) | "
          f"{r['min_api_calls']['total']} | {r['ideal_s']:.3f} | {r['wall_over_ideal'] or '-'} | {r['emulator_cpu_s']:.2f} | "
          f"{r.get('loadavg_1m', '-')} | {ratio} |")
