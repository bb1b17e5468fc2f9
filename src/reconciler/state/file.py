"""The default backend: ``.reconcile/state.json`` next to the manifests.

Each write appends one line to a journal (``state.json.journal``) and fsyncs it, so a run that is
killed between two calls loses nothing and a write costs O(1) rather than rewriting the whole file
(writers from parallel threads share an fsync where it is slow: see :meth:`FileBackend._record`);
:meth:`flush` folds the journal into ``state.json`` with an atomic rename. The lock is an
``flock`` on ``state.lock``: the kernel releases it when the holder dies, so a crashed run never
leaves a lock behind; the file's content names the holder for the error message.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from .. import redact
from ..errors import ReconcileError, StateLocked, StateWriteError
from . import check
from .backend import StateBackend
from .model import State, StateEntry


log = logging.getLogger("reconciler.state")
PROBE_BYTES = 4096
MIN_FREE = 256 * 1024  # room for the journal of a run and the compaction's temporary copy
# Where check_writable's probe (a new file: its fsync commits an inode too) synced this fast, each
# journal writer syncs at once under the write lock (a local disk: 0.2-0.8 ms for the probe, 0.1 ms
# per append); on a slower one (a CI's network disk) the writers waiting meanwhile share an fsync
DIRECT_FSYNC_S = 0.002
_GARBAGE = object()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json(doc: dict, *, indent: bool, newline: bool = False) -> bytes:
    """DOC as JSON (and a newline), UTF-8, keys sorted, indented two spaces or on one line. orjson
    writes it (C; the standard encoder indents in pure Python: 40 ms for 1,000 entries, there at the
    end of every apply); the standard one where orjson refuses a value (an integer beyond 64 bits, a
    lone surrogate). The two agree byte for byte on ASCII indented; orjson leaves other text
    unescaped (UTF-8), and writes one line without spaces after separators. Bytes, as orjson makes
    them: the state's text would be three more copies of a megabyte per 1,000 entries (decoded, the
    newline appended, encoded again to be written)."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
                            | (orjson.OPT_APPEND_NEWLINE if newline else 0))
    except TypeError:
        return (json.dumps(doc, indent=2 if indent else None, sort_keys=True) + ("\n" if newline else "")).encode()


def document_bytes(doc: dict) -> bytes:
    """The state file's content."""
    return _json(doc, indent=True, newline=True)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace PATH with CONTENT (text is written as UTF-8), scrubbed: never half written, durable
    when it returns."""
    data = redact.scrub_utf8(content) if isinstance(content, bytes) else redact.scrub(content).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class FileBackend(StateBackend):
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.journal = self.path.with_name(self.path.name + ".journal")
        self.backup = self.path.with_name(self.path.name + ".backup")
        self.lock_path = self.path.with_name("state.lock")
        self.description = str(self.path)
        self._state: State | None = None
        self._journal_fd: int | None = None
        self._journal_end: int | None = None  # where the last whole record ends (a torn tail is cut here)
        self._write_lock = threading.Lock()
        # group commit (_sync): records appended, records known durable, and the failed fsync, if one did
        self._sync_lock = threading.Lock()
        self._appended = 0
        self._synced = 0
        self._sync_error: str | None = None
        # how long the probe's fsync took: measured before any call, when no thread competes (an fsync
        # timed during an apply includes the wait for the GIL after it); None, not probed: share fsyncs
        self._probe_fsync_s: float | None = None
        # check_writable is asked twice per apply under one hold of the lock (before the plan, then by
        # the executor): a token per hold, and the hold in which a check passed. The lock keeps other
        # applies out and the plan between the two writes nothing, so a second probe (a write and an
        # fsync, ~1 ms) finds what the first found; a disk that fills during the plan is met as one
        # that fills mid-run (the journal's append fails whole and the run stops:
        # tests/test_state_writable.py). A new hold checks again.
        self._hold: object | None = None
        self._writable_in: object | None = None

    def _repair(self, entry: str | None = None) -> str:
        fix = f"fix or delete the entry {entry!r} in {self.path} by hand" if entry else f"fix {self.path} by hand"
        if self.backup.is_file():
            return f"{fix}, or restore {self.backup} (the state before the last apply) over it"
        return f"{fix} (there is no {self.backup.name} to restore), or `reconcile import` the connectors again"

    def _read(self, path: Path) -> str | None:
        try:
            # O_NONBLOCK: a FIFO (`--state` pointed at one) opens at once and is refused below,
            # instead of waiting forever for a writer
            with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
                mode = os.fstat(fh.fileno()).st_mode
                if stat.S_ISDIR(mode):
                    raise IsADirectoryError(errno.EISDIR, "is a directory")
                if not stat.S_ISREG(mode):
                    raise check.corrupt(str(path), "it is not a regular file (a FIFO, socket or device)",
                                        "point --state (or the manifests' state: path) at a regular file")
                return fh.read().decode("utf-8")
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise check.corrupt(str(path), "it is a directory, not a file",
                                f"move it away (the state is the file {self.path})") from None
        except UnicodeDecodeError as exc:
            raise check.corrupt(str(path), f"it is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                self._repair()) from None
        except OSError as exc:
            raise check.corrupt(str(path), f"cannot read it ({exc.strerror})",
                                "give this user read access to it and its directory") from None

    # -- reading ------------------------------------------------------------------------------
    def load(self) -> State:
        where = str(self.path)
        ahead = _read_ahead.pop(_key(self.path), None)
        got = ahead.result() if ahead is not None else None
        if isinstance(got, tuple) and len(got) == 3 and got[0] == _signature(self) and isinstance(got[1], State):
            state, self._journal_end = got[1], got[2]  # read by a manifest reader process, and unchanged since
        else:
            state = self._read_whole()
        if not self.lenient:
            check.unique_ids(state, where, how_to_drop=f"`reconcile state rm PATH {{name}}`, or {self._repair()}")
        self._state = state
        return state

    def _read_whole(self) -> State:
        """The state file and its journal replayed, checked for shape (not for duplicate ids)."""
        state = State()
        where = str(self.path)
        text = self._read(self.path)
        if text is not None:
            try:
                data = json.loads(text)
            except (ValueError, RecursionError) as exc:  # RecursionError: nesting beyond the parser's stack
                raise check.corrupt(where, f"it is not JSON ({exc})", self._repair()) from None
            del text  # 80 MB at 100,000 entries: not kept while the entries are made
            state = check.document(data, where, self._repair)
        self._journal_end = None
        journal = self._read(self.journal)
        if journal:
            self._replay(state, journal)
        return state

    def _replay(self, state: State, text: str) -> None:
        where = str(self.journal)
        lines = text.split("\n")
        whole = lines[:-1]  # what follows the last newline is a torn append (a crash mid-write), or nothing
        offset = 0
        for number, line in enumerate(whole, 1):
            offset += len(line.encode()) + 1
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = _GARBAGE
            problem = "is not JSON" if record is _GARBAGE else check.journal_record(record)
            if problem:
                raise check.corrupt(f"{where}:{number}", f"journal line {number} {problem} (only a torn last line "
                                    "is ignored: dropping this one would drop every record after it)",
                                    f"delete that line if it is stray, or {self._repair()} and remove {self.journal}")
            if record["op"] in ("put", "mv"):
                state.entries.pop(record.get("from", ""), None)
                entry = StateEntry.from_json(record["entry"])
                state.entries[entry.name] = entry
            elif record["op"] == "puts":
                for doc in record["entries"]:
                    entry = StateEntry.from_json(doc)
                    state.entries[entry.name] = entry
            else:
                state.entries.pop(record["name"], None)
            state.serial += 1
        self._journal_end = offset

    # -- writing ------------------------------------------------------------------------------
    def _fail(self, what: str, exc: OSError, *, changed: bool = True) -> ReconcileError:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        done = (f"every change recorded before this is in {self.journal}" if changed else "nothing was changed")
        return StateWriteError(f"state {self.path}: cannot {what} ({reason}); {done}. Free the space or fix the "
                               "permissions, then run again")

    def _open_journal(self) -> int:
        if self._journal_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if self._journal_end is not None and os.fstat(fd).st_size > self._journal_end:
                os.ftruncate(fd, self._journal_end)  # a torn tail would glue itself to the next record
            self._journal_fd = fd
        return self._journal_fd

    def _append(self, record: dict) -> int:
        """Write one record whole (the caller holds the write lock); its number, for :meth:`_sync`."""
        if self._state is None:
            self.load()
        data = redact.scrub_utf8(_json(record, indent=False)) + b"\n"  # a mask never takes a record's end
        try:
            fd = self._open_journal()
        except OSError as exc:
            raise self._fail("open its journal", exc) from None
        if self._sync_error is not None:  # after a failed fsync no later one can be trusted (the kernel drops the pages)
            raise StateWriteError(self._sync_error)
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            try:  # never leave half a record behind: the journal stays whole
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise self._fail("append to its journal", exc) from None
        self._appended += 1  # counted once written whole: an fsync that reads this count covers it
        return self._appended

    def _sync(self, number: int) -> None:
        """Return once record ``number`` is on disk. A group commit: an fsync covers every record written
        before it began, so a writer that finds its record covered by one another thread ran in the
        meantime returns without its own. Each write is still durable before its caller goes on (before
        the executor reports the action done or makes the next call), and parallel writers stop queueing
        behind one fsync each (0.3-3 ms apiece on a CI's disk, in series under the write lock before)."""
        with self._sync_lock:
            if self._synced >= number:
                return
            if self._sync_error is not None:
                raise StateWriteError(self._sync_error)
            covered = self._appended  # records counted are written whole; the fsync below covers them
            assert self._journal_fd is not None
            try:
                os.fsync(self._journal_fd)
            except OSError as exc:
                error = self._fail("sync its journal", exc)
                self._sync_error = str(error)
                raise error from None
            self._synced = covered

    def _record(self, record: dict, change: Callable[[State], None]) -> None:
        """Append ``record`` to the journal, make its ``change`` to the state in memory, and return once
        the record is on disk. The executor writes from its worker threads: one line at a time, or
        lines could interleave, and the state in memory changes in the journal's order (it is what
        flush writes). Where the disk syncs fast, the writer syncs at once under the write lock:
        sharing an fsync (:meth:`_sync`) costs each writer a second lock and a wake-up, which made
        1,000 creates 20-40 ms slower on a disk that syncs in 0.1 ms."""
        direct = self._probe_fsync_s is not None and self._probe_fsync_s <= DIRECT_FSYNC_S
        with self._write_lock:
            number = self._append(record)
            assert self._state is not None
            change(self._state)
            self._state.serial += 1
            if direct:
                self._sync(number)
        if not direct:
            self._sync(number)

    def put(self, entry: StateEntry) -> None:
        self._record({"op": "put", "entry": entry.to_json()}, lambda state: state.entries.__setitem__(entry.name, entry))

    def put_many(self, entries: list[StateEntry]) -> None:
        def change(state: State) -> None:
            for entry in entries:
                state.entries[entry.name] = entry

        # one journal line: replayed whole or, torn, not at all
        self._record({"op": "puts", "entries": [entry.to_json() for entry in entries]}, change)

    def remove(self, name: str) -> None:
        self._record({"op": "rm", "name": name}, lambda state: state.entries.pop(name, None))

    def rename(self, old: str, entry: StateEntry) -> None:
        def change(state: State) -> None:
            state.entries.pop(old, None)
            state.entries[entry.name] = entry

        self._record({"op": "mv", "from": old, "entry": entry.to_json()}, change)

    def check_writable(self) -> None:
        """Before the first platform call: a state that cannot be written would let an apply change the
        platforms and then forget it did (a read-only or full disk, an immutable file). Once per hold
        of the lock: checked again only after the lock is released and taken again."""
        if self._hold is not None and self._writable_in is self._hold:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".probe")
            try:
                os.write(fd, b"\0" * PROBE_BYTES)
                started = time.perf_counter()
                os.fsync(fd)
                self._probe_fsync_s = time.perf_counter() - started
            finally:
                os.close(fd)
                os.unlink(tmp)
            for existing in (self.path, self.journal):
                if existing.exists():
                    os.close(os.open(existing, os.O_WRONLY | os.O_APPEND))  # immutable (chattr +i): EPERM
        except OSError as exc:
            raise StateWriteError(f"state {self.path}: cannot be written "
                                  f"({'the disk is full' if exc.errno == errno.ENOSPC else exc.strerror}); "
                                  "nothing was changed. Make it writable (or free space) and run again") from None
        size = self.path.stat().st_size if self.path.exists() else 0
        free = shutil.disk_usage(self.path.parent).free
        if free < size + MIN_FREE:  # the compaction writes a full copy beside the old one
            raise StateWriteError(f"state {self.path}: only {free} bytes free on its disk, {size + MIN_FREE} needed "
                                  "to journal and compact the state; nothing was changed. Free space and run again")
        self._writable_in = self._hold  # None (no effect) when called without the lock

    def flush(self) -> None:
        self.close()
        if self._state is None or not self.journal.exists():
            return
        self._keep_backup()
        try:
            write_atomic(self.path, document_bytes(self._state.to_json()))
        except OSError as exc:
            raise self._fail("compact its journal into it", exc) from None
        self.journal.unlink(missing_ok=True)
        self._journal_end = None

    def _keep_backup(self) -> None:
        """The state before this run, for the repairs the error messages suggest. A hard link to the
        old file (no copy, always whole); a copy where the filesystem has no links; none if neither
        works: a missing backup never fails an apply."""
        if not self.path.is_file():
            return
        tmp = self.backup.with_name(self.backup.name + ".tmp")
        try:
            tmp.unlink(missing_ok=True)
            try:
                os.link(self.path, tmp)
            except OSError:
                shutil.copyfile(self.path, tmp)
            os.replace(tmp, self.backup)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            log.warning("state %s: no backup kept (%s)", self.path, exc.strerror or exc)

    def close(self) -> None:
        with self._sync_lock:  # never under an fsync in flight
            fd, self._journal_fd = self._journal_fd, None
            if fd is None:
                return
            try:
                if self._synced < self._appended and self._sync_error is None:  # a writer not yet in _sync
                    os.fsync(fd)
            except OSError as exc:
                raise self._fail("sync its journal", exc) from None
            finally:
                os.close(fd)
                self._synced = self._appended  # what a closed journal holds is synced, or failed above
                self._sync_error = None  # a failed fsync condemns that open file, not the next one

    # -- locking ------------------------------------------------------------------------------
    @contextmanager
    def lock(self, *, timeout: float, holder: str) -> Iterator[None]:
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateWriteError(f"state {self.path}: cannot be written (its lock {self.lock_path.name}: "
                                  f"{exc.strerror}); nothing was changed. Make it writable and run again") from None
        deadline = time.monotonic() + max(timeout, 0)
        acquired = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    acquired = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        who = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
                        raise StateLocked(
                            f"the state {self.path} is locked by {who}; another apply is running. "
                            "Wait for it, or pass --lock-timeout to wait longer"
                        ) from None
                    time.sleep(0.1)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, holder.encode(), 0)
            except OSError as exc:
                raise self._fail("write its lock's holder", exc, changed=False) from None
            self._hold = object()
            yield
        finally:
            if acquired:  # a waiter that gave up must not erase the holder's name
                self._hold = self._writable_in = None
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            os.close(fd)  # closing releases the flock

    # -- day-two operations -------------------------------------------------------------------
    def replace_all(self, state: State) -> None:
        with self._write_lock:
            self.close()
            write_atomic(self.path, document_bytes(state.to_json()))
            self.journal.unlink(missing_ok=True)  # folded into the pushed state, which replaces it
            self._state = state

    def force_unlock(self, lock_id: str) -> str:
        from . import check_lock_id

        if not self.lock_path.exists():
            raise ReconcileError(f"the state {self.path} is not locked; nothing to unlock")
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                raise ReconcileError(f"the state {self.path} is not locked; nothing to unlock")
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "an unnamed process"
            check_lock_id(holder, lock_id, str(self.path))
            # the kernel ties an flock to the holder's open file: it cannot be taken away, but the
            # next run opens a fresh lock file and no longer waits for the stuck one
            self.lock_path.unlink()
            return holder
        finally:
            os.close(fd)


# -- reading ahead ------------------------------------------------------------------------------
# A plan of 10,000 connectors spends ~0.13 s reading its state after the manifests are checked; a
# manifest reader process (manifest.parallel.Beside) can read it meanwhile, and unpickling what it
# read takes a quarter of that. What it read is used only by a backend of the same path whose
# files are unchanged since (same inode, size and modification time, journal included; checked at
# load, under the lock where the command takes one); anything else is read again here.
_read_ahead: dict[str, Any] = {}


def _signature(backend: FileBackend) -> tuple:
    out = []
    for path in (backend.path, backend.journal):
        try:
            st = os.stat(path)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _key(path: str | os.PathLike) -> str:
    return os.path.abspath(path)


def read_ahead(path: Path, beside_factory: Callable[[Callable[[], object]], Any], guard: Callable[[], None]) -> Any:
    """Register a read of the state at PATH (after ``guard()``, which raises where it must not be
    read), done beside the manifest checks; returns the job object (``beside_factory(job)``) to
    hand to the manifest loader."""
    def job() -> tuple | None:
        guard()
        backend = FileBackend(path)
        before = _signature(backend)
        state = backend._read_whole()
        return (before, state, backend._journal_end) if _signature(backend) == before else None

    beside = beside_factory(job)
    _read_ahead[_key(path)] = beside
    return beside
