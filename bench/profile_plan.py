"""Profile one plan in-process (cProfile), every stage on the main thread so nothing hides in a pool.

    python bench/profile_plan.py --n 10000 [--scenario plan] [--schedule none] [--latency-ms 25] [--top 30]

Same workload, seed and out-of-process emulator as bench/run.py; prints the stage timings (load,
state load, list + pair + decide, digest) and cProfile's top functions by own time.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402


class _Inline(ThreadPoolExecutor):
    """A pool that runs ``map`` on the caller's thread, so cProfile sees the work."""

    def map(self, fn, *iterables, **_kw):  # type: ignore[override]
        return [fn(*args) for args in zip(*iterables)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--scenario", default="plan", choices=["plan", "plan-1pct"])
    ap.add_argument("--latency-ms", type=float, default=25.0)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--schedule", choices=["cron", "none"], default="cron",
                    help="as bench/run.py: a cron per connector (one Airweave detail GET each) or none")
    args = ap.parse_args()
    w = run.workload(args.scenario, args.n)
    w.scheduled = args.schedule == "cron"
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    emu = None
    try:
        manifests = work / "manifests"
        run.write_manifests(manifests, w)
        seed = run.seed_direct(work, manifests / ".reconcile" / "state.json", w)
        emu = run.Emulator("airweave", args.latency_ms, seed, work)
        os.environ.update(run.child_env(emu.url))
        from reconciler import engine as engine_mod
        from reconciler.engine import Engine
        from reconciler.manifest import load
        from reconciler.state import open_backend

        engine_mod.ThreadPoolExecutor = _Inline  # type: ignore[misc]
        prof = cProfile.Profile()
        stages = {}
        prof.enable()
        t = time.perf_counter()
        manifest = load(str(manifests))
        stages["manifest load+validate"] = time.perf_counter() - t
        t = time.perf_counter()
        eng = Engine(manifest, open_backend(manifest, path_override=None, sandbox=False), parallelism=16)
        plan, _ctx = eng.plan()
        stages["engine.plan (state, list, pair, diff, digest)"] = time.perf_counter() - t
        prof.disable()
        eng.close()
        for k, v in stages.items():
            print(f"{k:50s} {v:7.2f} s")
        print(f"actions: {len(plan.actions)}; changes: {plan.has_changes}")
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
    finally:
        if emu:
            emu.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
