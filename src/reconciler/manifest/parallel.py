"""Read many manifest files on every core: parsing YAML is most of a large plan's CPU time, and
libyaml holds the GIL, so threads cannot share it; forked workers can.

Each worker parses its share of the files with :func:`~.yaml_loader.load_file` and hands back the
documents and diagnostics, pickled into an unlinked temporary file (a pipe would block it until
the parent, busy with its own share, reads). Only parsing happens there: environment variables,
secrets and every check stay in the parent. A worker that fails in any way (killed, out of
memory, a pickling error) costs nothing but time: the parent parses its share itself.

Forking is done only where it is safe and pays: on a POSIX system with more than one usable core,
with no other thread running (a fork copies a lock another thread may hold), and for enough bytes
that a worker's start and the pickle round trip are small beside the parse.
"""
from __future__ import annotations

import logging
import os
import pickle
import signal
import tempfile
import threading
from typing import Callable

from ..errors import Diagnostic
from .yaml_loader import Document, load_file

log = logging.getLogger("reconciler.manifest")
Result = tuple[Document | None, list[Diagnostic]]
MIN_BYTES_PER_WORKER = 256 * 1024  # about 1,000 connectors: below it, a fork costs more than it saves
MAX_WORKERS = 8


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def other_threads() -> bool:
    return threading.active_count() > 1


def _size(file: str) -> int:
    try:
        return os.stat(file).st_size
    except OSError:
        return 0


def shares(files: list[str], workers: int) -> list[list[int]]:
    """Indexes of ``files`` per worker, balanced by size (largest first onto the lightest share)."""
    sizes = [_size(f) for f in files]
    workers = max(1, min(workers, len(files), sum(sizes) // MIN_BYTES_PER_WORKER or 1))
    buckets: list[list[int]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for i in sorted(range(len(files)), key=lambda i: -sizes[i]):
        lightest = loads.index(min(loads))
        buckets[lightest].append(i)
        loads[lightest] += sizes[i]
    return [sorted(b) for b in buckets if b]


def load_files(files: list[str], *, parse: Callable[[str], Result] = load_file) -> list[Result]:
    """``[parse(f) for f in files]``, the same results in the same order, on several cores when it pays."""
    workers = min(usable_cores(), MAX_WORKERS)
    if workers < 2 or len(files) < 2 or not hasattr(os, "fork") or other_threads():
        return [parse(f) for f in files]
    parts = shares(files, workers)
    if len(parts) < 2:
        return [parse(f) for f in files]
    log.info("reading %d manifest files in %d processes", len(files), len(parts))
    results: list[Result | None] = [None] * len(files)
    children: list[tuple[int, object, list[int]]] = []
    collected: set[int] = set()
    try:
        for part in parts[1:]:
            out = tempfile.TemporaryFile()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker; its results are what the tests check
                _work(out, [files[i] for i in part], parse)
            children.append((pid, out, part))
        for i in parts[0]:
            results[i] = parse(files[i])
        for pid, out, part in children:
            got = _collect(pid, out)
            collected.add(pid)
            if got is None or len(got) != len(part):
                log.info("a manifest reader process failed; its %d files are read again here", len(part))
                got = [parse(files[i]) for i in part]
            for i, result in zip(part, got):
                results[i] = result
    finally:
        for pid, out, _part in children:
            if pid not in collected:  # interrupted: no worker outlives the run
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
                out.close()  # type: ignore[attr-defined]
    return results  # type: ignore[return-value]


def _work(out, files: list[str], parse: Callable[[str], Result]) -> None:  # type: ignore[no-untyped-def]  # pragma: no cover
    code = 1
    try:
        # Ctrl-C reaches the whole process group: the worker just dies, the parent reports it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        pickle.dump([parse(f) for f in files], out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        code = 0
    finally:
        os._exit(code)  # never the parent's atexit handlers, buffered output or finally blocks


def _collect(pid: int, out) -> list[Result] | None:  # type: ignore[no-untyped-def]
    try:
        _, status = os.waitpid(pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        out.seek(0)
        got = pickle.load(out)
        return got if isinstance(got, list) else None
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError):
        return None
    finally:
        out.close()
