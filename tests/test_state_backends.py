"""One contract, two backends: the file state and the PostgreSQL state behave the same.

The PostgreSQL cases run against a real server (tests/pg.py); the lock cases use real processes,
including one killed with SIGKILL while it holds the lock.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import pytest

from pg import server
from reconciler.errors import StateLocked
from reconciler.state.file import FileBackend
from reconciler.state.model import StateEntry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(params=["file", "postgres"])
def make(request, tmp_path):
    """``make()`` opens a backend on the same state each call (a new handle: as another run would)."""
    opened = []
    if request.param == "file":
        spec = ("file", str(tmp_path / "state.json"))
    else:
        spec = ("postgres", server().new_database())

    def open_one():
        backend = _open(spec)
        opened.append(backend)
        return backend

    open_one.spec = spec
    yield open_one
    for b in opened:
        b.close()


def _open(spec):
    kind, where = spec
    if kind == "file":
        return FileBackend(where)
    from reconciler.state.postgres import PostgresBackend

    return PostgresBackend(where, name="team-a")


def entry(name: str, **kw) -> StateEntry:
    return StateEntry(name=name, provider="aw", type="airweave", id=f"id-{name}", key=name, source="github",
                      target="docs", fields={"scope": {"repo": name}}, fingerprint="v1:abcd:ef", **kw)


def test_put_load_remove(make):
    b = make()
    assert b.load().entries == {}
    b.put(entry("one"))
    b.put(entry("two"))
    b.put(entry("one", version="v2"))  # an upsert, not a second row
    b.remove("two")
    b.remove("never-there")  # forgetting what is not there is not an error
    state = b.load()
    assert sorted(state.entries) == ["one"]
    assert state.entries["one"].version == "v2"
    assert state.entries["one"].fields == {"scope": {"repo": "one"}}


def test_writes_are_durable_without_flush(make):
    b = make()
    b.put(entry("kept"))
    b.put(entry("gone"))
    b.remove("gone")
    # no flush, no close: a run killed here must not lose anything
    again = make().load()
    assert sorted(again.entries) == ["kept"]
    assert again.entries["kept"] == entry("kept")


def test_put_many_is_one_durable_write(make):
    """A replace's replacement and deposed original: both in one write, read back without a flush."""
    b = make()
    b.put(entry("one"))
    b.put_many([entry("one", version="v2"), replace(entry("one"), name="one~deposed-id-one", id="id-old")])
    serial = b.load().serial
    again = make().load()
    assert sorted(again.entries) == ["one", "one~deposed-id-one"] and again.serial == serial
    assert again.entries["one"].version == "v2" and again.entries["one~deposed-id-one"].id == "id-old"


def test_lineage_is_stable_and_serial_grows(make):
    b = make()
    b.put(entry("a"))
    b.flush()
    first = make().load()
    make().put(entry("b"))
    second = make().load()
    assert second.lineage == first.lineage
    assert second.serial > first.serial


def test_lock_contention_names_the_holder(make):
    holder, waiter = make(), make()
    with holder.lock(timeout=0, holder="pid 4242 (ci@runner-7, since 2025-01-01T00:00:00+00:00)"):
        started = time.monotonic()
        with pytest.raises(StateLocked) as exc:
            with waiter.lock(timeout=0.5, holder="pid 1"):
                pass
        assert time.monotonic() - started >= 0.45  # it waited for --lock-timeout before giving up
        assert "pid 4242 (ci@runner-7" in str(exc.value)
    with waiter.lock(timeout=0, holder="pid 1"):  # released on exit
        pass


def test_lock_wait_succeeds_when_the_holder_finishes(make):
    proc = _hold_lock_in_child(make.spec, hold_for=0.6)
    try:
        started = time.monotonic()
        with make().lock(timeout=10, holder="waiter"):
            waited = time.monotonic() - started
        assert 0.2 < waited < 8
    finally:
        proc.wait(timeout=10)


def test_lock_is_released_when_the_holder_is_killed(make):
    proc = _hold_lock_in_child(make.spec, hold_for=600)
    with pytest.raises(StateLocked) as exc:
        with make().lock(timeout=0.2, holder="waiter"):
            pass
    assert "child-holder" in str(exc.value)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with make().lock(timeout=10, holder="waiter"):  # the kernel / the database let go of it
        pass


def _hold_lock_in_child(spec, *, hold_for: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})
        from test_state_backends import _open
        b = _open({spec!r})
        with b.lock(timeout=0, holder="child-holder pid " + str(__import__('os').getpid())):
            print("locked", flush=True)
            time.sleep({hold_for})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_concurrent_puts_from_threads_lose_nothing(make):
    """The executor records outcomes from several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    b = make()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: b.put(entry(f"c{i:02d}")), range(40)))
    b.flush()
    assert sorted(make().load().entries) == [f"c{i:02d}" for i in range(40)]
