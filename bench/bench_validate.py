"""Benchmark: load + validate 10,000 connectors across ~50 files.

Prints wall time and peak memory (tracemalloc: Python allocations; ru_maxrss: the process).
Targets: < 2 s and < 300 MB. Run: python bench/bench_validate.py [--connectors N] [--files N]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from reconciler.manifest import load

TYPES = ("airweave", "nango", "airstore", "aimable", "connectors-api")


def connector(i: int, kind: str) -> str:
    name = f"conn-{i:05d}"
    if kind == "airweave":
        return (f"  {name}:\n    provider: airweave\n    source: github\n    target: docs-{i % 7}\n"
                f"    description: Repository {i}\n    scope:\n      repo_name: org/repo-{i}\n      branch: main\n"
                f"    schedule:\n      cron: \"{i % 60} */6 * * *\"\n    credentials:\n      personal_access_token: ${{TOKEN}}\n"
                f"    lifecycle:\n      ignore_changes: [scope.branch]\n")
    if kind == "nango":
        return (f"  {name}:\n    provider: nango\n    source: slack-prod\n    scope:\n      team: t{i}\n"
                f"    syncs:\n      messages:\n        every: 1h\n      channels:\n        cron: \"*/30 * * * *\"\n"
                f"    credentials:\n      type: OAUTH2\n      access_token: ${{TOKEN}}\n")
    if kind == "airstore":
        return (f"  {name}:\n    provider: airstore\n    source: gmail\n    target: ws_{i}\n"
                f"    member: {uuid.UUID(int=i + 1)}\n    credentials:\n      access_token: ${{TOKEN}}\n")
    if kind == "aimable":
        return (f"  {name}:\n    provider: aimable\n    source: google-drive\n    target: space/col-{i}\n"
                f"    scope:\n      folder_ids: [f{i}]\n    credentials:\n      access_token: ${{TOKEN}}\n")
    return (f"  {name}:\n    provider: capi\n    source: s3\n    target: col_{i}\n    scope:\n      bucket: b{i}\n"
            f"      region: us-east-1\n      prefix: /docs/\n    credentials:\n      accessKeyId: ${{TOKEN}}\n"
            f"      secretAccessKey: ${{TOKEN}}\n")


def generate(root: Path, connectors: int, files: int) -> None:
    (root / "providers.yaml").write_text("version: 1\nproviders:\n" + "".join(
        f"  {'capi' if t == 'connectors-api' else t}:\n    type: {t}\n    api_key: ${{API_KEY}}\n" for t in TYPES))
    per_file = -(-connectors // files)
    for f in range(files):
        ids = range(f * per_file, min(connectors, (f + 1) * per_file))
        body = "".join(connector(i, TYPES[i % len(TYPES)]) for i in ids)
        (root / f"team-{f:02d}.yaml").write_text("version: 1\nconnectors:\n" + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connectors", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--no-tracemalloc", action="store_true", help="time without tracemalloc's overhead")
    args = parser.parse_args()
    env = {"TOKEN": "bench-token-value", "API_KEY": "bench-api-key"}
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), args.connectors, args.files)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        if not args.no_tracemalloc:
            tracemalloc.start()
        start = time.perf_counter()
        manifest = load(tmp, env=env)
        wall = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] if not args.no_tracemalloc else 0
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if sys.platform == "darwin":
        rss //= 1024
    print(f"bench_validate: {len(manifest.connectors)} connectors, {len(manifest.files)} files, "
          f"{size / 1048576:.1f} MB of YAML")
    print(f"  wall time        {wall:.2f} s" + ("" if args.no_tracemalloc else " (under tracemalloc)"))
    if not args.no_tracemalloc:
        print(f"  peak (tracemalloc) {peak / 1048576:.1f} MB")
    print(f"  peak RSS (ru_maxrss) {rss / 1024:.1f} MB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
