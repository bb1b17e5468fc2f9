"""bench/run.py end to end at N = 100 (no timing assertions), and the equality pre-check in the
diff never hides what DeepDiff would report (the compiled schema check's guarantee is
tests/test_schema_agreement.py's).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from deepdiff import DeepDiff

from reconciler.plan.diff import same

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
FIELDS = ("scenario", "n", "parallelism", "latency_ms", "wall_s", "cpu_s", "peak_rss_mb", "api_calls",
          "min_api_calls", "ideal_s", "emulator_cpu_s", "machine")


def _bench(scenario: str, n: int = 100, *extra: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(RUN), "--scenario", scenario, "--n", str(n), "--latency-ms", "1",
                           "--results", "-", "--repeat", "1", *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_every_scenario_produces_a_well_formed_result():
    results = {r["scenario"]: r for r in _bench("all")}
    assert set(results) == {"validate", "plan", "plan-1pct", "apply-create", "apply-update-delete"}
    for r in results.values():
        missing = [f for f in FIELDS if f not in r]
        assert not missing, (r["scenario"], missing)
        assert r["ok"], r
        assert r["n"] == 100 and r["parallelism"] == 16
        assert {"nproc", "cpu_model", "python"} <= set(r["machine"])
        assert r["api_calls"]["total"] >= r["min_api_calls"]["total"], r
    assert results["validate"]["api_calls"]["total"] == 0
    # a plan with nothing to change makes exactly the minimum: the list pages, and a detail GET per
    # scheduled connector (Airweave's modified_at does not move on a schedule change) ...
    assert results["plan"]["api_calls"] == results["plan"]["min_api_calls"] == {"list": 1, "get": 100, "total": 101}
    # ... and for connectors without a schedule, the list pages alone
    (unscheduled,) = _bench("plan", 100, "--schedule", "none")
    assert unscheduled["ok"] and unscheduled["schedules"] == "none"
    assert unscheduled["api_calls"] == unscheduled["min_api_calls"] == {"list": 1, "total": 1}
    assert results["plan-1pct"]["api_calls"].get("get") == results["plan-1pct"]["min_api_calls"]["get"]
    assert results["apply-create"]["api_calls"]["create"] == 100
    assert results["apply-create"]["next_plan_exit_code"] == 0  # converged
    # the same creates from a bare client against a fresh emulator, for the ratio beside the ideal
    assert results["apply-create"]["emulator_floor_s"] > 0 and results["apply-create"]["emulator_floor_over_ideal"]
    assert results["apply-update-delete"]["api_calls"]["update"] == 100
    assert results["apply-update-delete"]["api_calls"]["delete"] == 10
    assert results["apply-update-delete"]["next_plan_exit_code"] == 0


def test_ansible_baseline_runs_beside_ours():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from ansible_baseline import available
    finally:
        sys.path.pop(0)
    if not available():
        pytest.skip("ansible-core not installed (pip install ansible-core)")
    results = {r["scenario"]: r for r in _bench("ansible", n=5)}
    assert results["ansible-plan"]["ok"] and results["ansible-apply-create"]["ok"]
    assert results["ansible-plan"]["api_calls"]["get"] == 5  # one GET per connector
    assert results["ansible-apply-create"]["api_calls"]["create"] == 5


@pytest.mark.parametrize("a,b", [
    ({"a": 1}, {"a": 1.0}), ({"a": True}, {"a": 1}), ({"a": [1, 2]}, {"a": [1, 2]}), ({"a": [1, 2]}, {"a": [2, 1]}),
    ({"a": {"b": None}}, {"a": {"b": None}}), ({"a": "x"}, {"a": "x", "b": 1}), ({"a": float("nan")}, {"a": 0.0}),
    ({"s": {"cron": "0 * * * *"}}, {"s": {"cron": "0 * * * *"}}), ({"a": (1,)}, {"a": [1]}),
])
def test_equality_precheck_agrees_with_deepdiff(a, b):
    if same(a, b):
        assert not DeepDiff(a, b, view="tree", ignore_order=False, ignore_numeric_type_changes=False)
