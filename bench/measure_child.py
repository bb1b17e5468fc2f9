"""Run a command and write its exit code, wall time, CPU time and peak RSS as JSON.

bench/run.py measures the reconciler through this small launcher instead of waiting for it
directly: Linux charges a child, at exec, with the peak RSS of the address space it was forked
from (exec_mmap's setmax_mm_hiwater_rss), so a child forked straight from the benchmark (which
holds the seeded data of 100,000 connectors) would report the benchmark's own memory as its peak.
The launcher is small, so the command's ru_maxrss is its own.

    python bench/measure_child.py OUT.json CMD [ARGS...]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    out, cmd = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    with open(out, "w") as fh:
        json.dump({"code": os.waitstatus_to_exitcode(status), "wall_s": wall,
                   "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_kb": usage.ru_maxrss}, fh)


if __name__ == "__main__":
    main()
