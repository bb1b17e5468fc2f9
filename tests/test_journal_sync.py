"""The file backend's journal syncs: every put returns only once its own record is on disk (an fsync
that began after the record was written has ended). Where the disk syncs slowly, parallel writers
share fsyncs (group commit); where it syncs fast, each writer syncs at once under the write lock."""
from __future__ import annotations

import errno
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reconciler.errors import StateWriteError
from reconciler.state.file import FileBackend
from reconciler.state.model import StateEntry


def entry(i: int) -> StateEntry:
    return StateEntry(name=f"conn-{i:04d}", provider="aw", type="airweave", id=f"id-{i}", source="github", target="docs")


def test_every_put_returns_after_an_fsync_that_covers_its_record(tmp_path, monkeypatch):
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    real_fsync = os.fsync
    lock = threading.Lock()
    synced: list[int] = []  # journal sizes each finished fsync covered (its size when it began)
    calls = [0]

    def slow_fsync(fd: int) -> None:
        size = os.fstat(fd).st_size
        time.sleep(0.005)  # a slow disk: writers pile up behind it
        real_fsync(fd)
        with lock:
            synced.append(size)
            calls[0] += 1

    monkeypatch.setattr(os, "fsync", slow_fsync)
    covered_at_return: dict[str, int] = {}

    def put(i: int) -> None:
        backend.put(entry(i))
        with lock:
            covered_at_return[entry(i).name] = max(synced)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(200)))
    text = (tmp_path / "state.json.journal").read_bytes()
    end = 0
    ends: dict[str, int] = {}
    for line in text.splitlines(keepends=True):
        end += len(line)
        ends[json.loads(line)["entry"]["name"]] = end
    assert set(ends) == set(covered_at_return) and len(ends) == 200
    assert all(covered_at_return[name] >= ends[name] for name in ends)
    assert calls[0] < 200  # writers shared fsyncs
    backend.flush()
    assert set(FileBackend(tmp_path / "state.json").load().entries) == set(ends)


def _timed_fsync(monkeypatch, backend: FileBackend, seconds: float, log: list[tuple[int, bool]]) -> None:
    """fsync as a disk that takes ``seconds``; each call logs the journal's size and whether some
    writer held the backend's write lock (in a group commit, a writer may or may not)."""
    def fsync(fd: int) -> None:
        log.append((os.fstat(fd).st_size, backend._write_lock.locked()))
        time.sleep(seconds)

    monkeypatch.setattr(os, "fsync", fsync)


def _journal_ends(path) -> list[int]:
    lines = path.read_bytes().splitlines(keepends=True)
    return [sum(len(line) for line in lines[:k + 1]) for k in range(len(lines))]


def test_on_a_disk_that_synced_the_probe_fast_every_writer_syncs_its_record_at_once(tmp_path, monkeypatch):
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    log: list[tuple[int, bool]] = []
    _timed_fsync(monkeypatch, backend, 0.0, log)
    backend.check_writable()
    log.clear()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: backend.put(entry(i)), range(200)))
    # one fsync per record, right after it was written, under the write lock
    assert log == [(end, True) for end in _journal_ends(tmp_path / "state.json.journal")]


@pytest.mark.parametrize("probed", [True, False])
def test_on_a_slow_disk_or_unprobed_the_writers_share_fsyncs(tmp_path, monkeypatch, probed):
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    log: list[tuple[int, bool]] = []
    _timed_fsync(monkeypatch, backend, 0.005, log)
    if probed:
        backend.check_writable()
        assert backend._probe_fsync_s >= 0.005
    log.clear()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: backend.put(entry(i)), range(100)))
    assert len(log) < 100


def test_a_failed_fsync_fails_that_write_and_every_later_one_until_the_journal_is_reopened(tmp_path, monkeypatch):
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    backend.put(entry(0))
    real_fsync = os.fsync
    failing = [True]

    def fsync(fd: int) -> None:
        if failing[0]:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StateWriteError, match="cannot sync its journal"):
        backend.put(entry(1))
    failing[0] = False
    # the kernel may have dropped the pages a failed fsync left: a later success proves nothing
    with pytest.raises(StateWriteError, match="cannot sync its journal"):
        backend.put(entry(2))
    backend.flush()  # closes the journal; the compaction writes a new file, fsynced on its own
    backend.put(entry(3))
    assert "conn-0003" in FileBackend(tmp_path / "state.json").load().entries
