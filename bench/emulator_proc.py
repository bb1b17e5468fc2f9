"""Bench-only emulator launcher: one platform emulator in its own process, seeded from a JSON file.

Why not ``reconcile emulate --data-dir``: with a data dir the emulator rewrites its whole JSON
document after every write (O(N) per call, ~50 ms at 10k connectors), which would measure the
emulator's persistence rather than the reconciler. This launcher loads the seed once and keeps the
data in memory; everything else (routes, validation, latency, /_emulator/stats) is the project's
own emulator (``reconciler.emulators.base.build``).

Usage: python bench/emulator_proc.py TYPE --port-file F [--latency-ms 25] [--seed seed.json]
The chosen port is written to --port-file once the socket is bound.
"""
from __future__ import annotations

import argparse
import json
import logging
import socket
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import uvicorn  # noqa: E402

from reconciler.emulators.base import EmulatorConfig, build, serve, uvicorn_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("type")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--api-key", default="bench-api-key")
    ap.add_argument("--target", action="append", default=[])
    ap.add_argument("--seed", help="JSON document to use as the emulator's store data")
    args = ap.parse_args()
    config = EmulatorConfig(api_key=args.api_key, targets=args.target, latency_ms=args.latency_ms,
                            sync_duration=0.5)
    app = build(args.type, config)
    store = getattr(app.app.state, "store", None)
    if args.seed and store is not None:
        with store.lock:
            store.data = json.loads(Path(args.seed).read_text())
    if store is not None:
        store.path = None  # in memory: no whole-document rewrite per write
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    # served as the tests' and `reconcile emulate`'s emulators are (httptools, uvloop where installed)
    server = uvicorn.Server(uvicorn_config(app, log_level="critical", timeout_keep_alive=60, backlog=2048))
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    Path(args.port_file).write_text(str(sock.getsockname()[1]))
    serve(server, [sock])


if __name__ == "__main__":
    main()
