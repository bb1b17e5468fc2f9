"""The default backend: ``.reconcile/state.json`` next to the manifests.

Each write appends one line to a journal (``state.json.journal``) and fsyncs it, so a run that is
killed between two calls loses nothing and a write costs O(1) rather than rewriting the whole file;
:meth:`flush` folds the journal into ``state.json`` with an atomic rename. The lock is an
``flock`` on ``state.lock``: the kernel releases it when the holder dies, so a crashed run never
leaves a lock behind; the file's content names the holder for the error message.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import redact
from ..errors import ReconcileError, StateLocked
from .backend import StateBackend
from .model import State, StateEntry


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(redact.scrub(text))
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
        self.lock_path = self.path.with_name("state.lock")
        self.description = str(self.path)
        self._state: State | None = None
        self._journal_fh = None
        self._write_lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------------
    def load(self) -> State:
        state = State()
        if self.path.exists():
            try:
                state = State.from_json(json.loads(self.path.read_text()))
            except (ValueError, TypeError) as exc:
                raise ReconcileError(f"state file {self.path} is corrupt ({exc}); restore it from a backup") from exc
        if self.journal.exists():
            for line in self.journal.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    break  # a torn last line from a crash mid-append: everything before it is intact
                if record.get("op") == "put":
                    entry = StateEntry.from_json(record["entry"])
                    state.entries[entry.name] = entry
                elif record.get("op") == "rm":
                    state.entries.pop(record["name"], None)
                state.serial += 1
        self._state = state
        return state

    # -- writing ------------------------------------------------------------------------------
    def _append(self, record: dict) -> None:
        if self._state is None:
            self.load()
        if self._journal_fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._journal_fh = open(self.journal, "a")
        self._journal_fh.write(redact.scrub(json.dumps(record, sort_keys=True)) + "\n")
        self._journal_fh.flush()
        os.fsync(self._journal_fh.fileno())

    # the executor writes from its worker threads: one line at a time, or lines could interleave
    def put(self, entry: StateEntry) -> None:
        with self._write_lock:
            self._append({"op": "put", "entry": entry.to_json()})
            assert self._state is not None
            self._state.entries[entry.name] = entry
            self._state.serial += 1

    def remove(self, name: str) -> None:
        with self._write_lock:
            self._append({"op": "rm", "name": name})
            assert self._state is not None
            self._state.entries.pop(name, None)
            self._state.serial += 1

    def flush(self) -> None:
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None
        if self._state is None or not self.journal.exists():
            return
        write_atomic(self.path, json.dumps(self._state.to_json(), indent=2, sort_keys=True) + "\n")
        self.journal.unlink(missing_ok=True)

    def close(self) -> None:
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None

    # -- locking ------------------------------------------------------------------------------
    @contextmanager
    def lock(self, *, timeout: float, holder: str) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
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
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
            yield
        finally:
            if acquired:  # a waiter that gave up must not erase the holder's name
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            os.close(fd)  # closing releases the flock

    # -- day-two operations -------------------------------------------------------------------
    def replace_all(self, state: State) -> None:
        with self._write_lock:
            if self._journal_fh is not None:
                self._journal_fh.close()
                self._journal_fh = None
            write_atomic(self.path, json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")
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
