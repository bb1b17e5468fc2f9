"""Read many manifest files on every core: parsing YAML is most of a large plan's CPU time, and
libyaml holds the GIL, so threads cannot share it; forked workers can.

Each worker parses its share of the files with :func:`~.yaml_loader.load_file` and hands back the
documents and diagnostics, pickled into an unlinked temporary file (a pipe would block it until
the parent, busy with its own share, reads). Only parsing happens there: environment variables,
secrets and every check stay in the parent. The first worker may then run one read-only job
(:class:`Beside`: a command has it read the state) while the parent checks the manifests. A
worker that fails in any way (killed, out of memory, a pickling error) costs nothing but time:
the parent parses its share itself. A worker also judges the cron texts of its share
(:func:`~.cron.judge_texts`), so that the parent, busy importing meanwhile, never starts croniter.

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
from . import cron
from .yaml_loader import Document, load_file

log = logging.getLogger("reconciler.manifest")
Result = tuple[Document | None, list[Diagnostic]]
MIN_BYTES_PER_WORKER = 256 * 1024  # about 1,000 connectors: below it, a fork costs more than it saves
# with other work for this process meanwhile, a worker pays from a few milliseconds of parsing
MIN_BYTES_BESIDE = 32 * 1024
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


class Beside:
    """A job for the first reader process once its share of the files is parsed: it runs while the
    parent goes on checking the manifests, and :meth:`result` waits for what it returned. Where no
    reader process runs (one core, few files) or it fails, the result is None: the caller does the
    work itself. The job must only read; its result comes back pickled."""

    def __init__(self, job: Callable[[], object]) -> None:
        self.job = job
        self._child: tuple[int, object] | None = None

    def result(self) -> object | None:
        child, self._child = self._child, None
        if child is None:
            return None
        got = _collect(*child)
        return got[0] if got and len(got) == 1 else None


def load_files(files: list[str], *, parse: Callable[[str], Result] = load_file,
               beside: Beside | None = None, meanwhile: Callable[[], None] | None = None) -> list[Result]:
    """``[parse(f) for f in files]``, the same results in the same order, on several cores when it pays.

    ``meanwhile`` runs once in this process: while reader processes parse every file (this one
    then parses none), where there are enough bytes for that to pay (``MIN_BYTES_BESIDE``), else
    before the files are parsed here. A command passes the imports it needs next."""
    workers = min(usable_cores(), MAX_WORKERS)
    can_fork = workers >= 2 and hasattr(os, "fork") and not other_threads()
    if meanwhile is not None:
        if can_fork and files and sum(_size(f) for f in files) >= MIN_BYTES_BESIDE:
            return _load_in_workers(files, shares(files, workers), parse, beside, meanwhile)
        meanwhile()
    if not can_fork or len(files) < 2:
        return [parse(f) for f in files]
    parts = shares(files, workers)
    if len(parts) < 2:
        return [parse(f) for f in files]
    return _load_in_workers(files, parts, parse, beside, None)


def _load_in_workers(files: list[str], parts: list[list[int]], parse: Callable[[str], Result],
                     beside: Beside | None, meanwhile: Callable[[], None] | None) -> list[Result]:
    """The files of ``parts`` parsed by forked workers, one part each, but the first part, which this
    process parses itself, unless it has ``meanwhile`` to run instead."""
    forked = parts if meanwhile is not None else parts[1:]
    log.info("reading %d manifest files in %d processes", len(files), len(forked) + (meanwhile is None))
    results: list[Result | None] = [None] * len(files)
    children: list[tuple[int, object, list[int], int | None]] = []
    collected: set[int] = set()
    try:
        for n, part in enumerate(forked):
            out = tempfile.TemporaryFile()
            job = beside if n == 0 else None
            side = tempfile.TemporaryFile() if job else None
            ready, signal_w = os.pipe() if job else (None, None)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker; its results are what the tests check
                _work(out, [files[i] for i in part], parse, job, side, signal_w)
            if job:
                os.close(signal_w)
                job._child = (pid, side)
            children.append((pid, out, part, ready))
        if meanwhile is not None:
            meanwhile()
        else:
            for i in parts[0]:
                results[i] = parse(files[i])
        for pid, out, part, ready in children:
            got = _share(_collect(pid, out) if ready is None else _collect_signalled(ready, out))
            if ready is None:
                collected.add(pid)
            elif got is None:  # the worker died before its share was written: no job result either
                beside.result()  # type: ignore[union-attr]
                collected.add(pid)
            if got is None or len(got) != len(part):
                log.info("a manifest reader process failed; its %d files are read again here", len(part))
                got = [parse(files[i]) for i in part]
            for i, result in zip(part, got):
                results[i] = result
    except BaseException:  # interrupted: no worker outlives the run
        if beside is not None:
            beside._child = None
        for pid, out, _part, _ready in children:
            if pid not in collected:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
                out.close()  # type: ignore[attr-defined]
        raise
    return results  # type: ignore[return-value]


def _work(out, files: list[str], parse: Callable[[str], Result], job: Beside | None = None,  # type: ignore[no-untyped-def]
          side=None, signal_w: int | None = None) -> None:  # type: ignore[no-untyped-def]  # pragma: no cover
    code = 1
    try:
        # Ctrl-C reaches the whole process group: the worker just dies, the parent reports it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _write_share(out, files, parse)
        if job is not None and signal_w is not None:
            os.write(signal_w, b"1")  # the share is written: the parent reads it while the job runs
            os.close(signal_w)
            try:
                value = job.job()
            except Exception:  # noqa: BLE001 - the parent does the work itself
                value = None
            pickle.dump([value], side, protocol=pickle.HIGHEST_PROTOCOL)
            side.flush()
        code = 0
    finally:
        os._exit(code)  # never the parent's atexit handlers, buffered output or finally blocks


def _write_share(out, files: list[str], parse: Callable[[str], Result]) -> None:  # type: ignore[no-untyped-def]  # pragma: no cover
    """A worker's results and the verdicts on their crons, pickled into OUT. Its own function, so
    the parsed share is freed before the worker's job (the state read ahead) runs: held through it,
    it was the peak RSS of a plan of 100,000 connectors (473 MB against 422)."""
    results = [parse(f) for f in files]
    pickle.dump([results, cron.judge_texts(doc.data for doc, _problems in results if doc is not None)], out,
                protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _share(got: list | None) -> list[Result] | None:
    """A worker's results, its cron verdicts learnt."""
    if got is None or len(got) != 2 or not isinstance(got[0], list):
        return None
    cron.learn(got[1])
    return got[0]


def _collect_signalled(ready: int, out) -> list | None:  # type: ignore[no-untyped-def]
    """The share of a worker that goes on with a job: read once it says the share is written."""
    def written() -> bool:
        return os.read(ready, 1) == b"1"  # b"": it died first

    try:
        return _unpickled(out, written)
    finally:
        os.close(ready)


def _collect(pid: int, out) -> list | None:  # type: ignore[no-untyped-def]
    def exited() -> bool:
        _, status = os.waitpid(pid, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    return _unpickled(out, exited)


def _unpickled(out, done: Callable[[], bool]) -> list | None:  # type: ignore[no-untyped-def]
    """What a worker pickled into OUT, once ``done()`` says it finished writing; None if it failed."""
    try:
        if not done():
            return None
        out.seek(0)
        got = pickle.load(out)
        return got if isinstance(got, list) else None
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError):
        return None
    finally:
        out.close()
