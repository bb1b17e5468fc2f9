"""A state that cannot be written stops an apply before its first platform call (issue 13: apply used
to delete 11 connectors and then fail on its journal), and a disk that fills mid-run ends in a clear
error with the journal whole; the re-run converges.

Real conditions, not mocks: a read-only tmpfs, an immutable file (``chattr +i``), a tmpfs filled to
the last byte. Mounting needs root; elsewhere these tests skip.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from e2e_helpers import API_KEY, Project, Spec, emu_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a tmpfs")


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def mount(size: str = "4m"):  # type: ignore[no-untyped-def]
        where = tmp_path / f"fs{len(mounted)}"
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def _applied(tmp_path, emulator, state: str, n: int = 4) -> Project:
    emu = emulator("aimable", targets=["sp1/col1"], api_key=API_KEY)
    p = Project(tmp_path / "proj", emu, "aimable")
    p.write({f"c{i}": Spec() for i in range(n)})
    r = p.apply("--state", state)
    assert r.code == 0, r.output
    return p


def _refused_before_any_call(p: Project, state: str, expected: str) -> None:
    before = emu_state(p.emu)["connectors"]
    p.write({})  # would delete every connector
    r = p.apply("--state", state)
    assert r.code == 1, r.output
    assert "Traceback" not in r.output, r.output
    assert f"state {state}: " in r.stderr and expected in r.stderr and "nothing was changed" in r.stderr, r.stderr
    assert emu_state(p.emu)["connectors"] == before  # nothing deleted


def test_read_only_state_directory(tmp_path, emulator, tmpfs):
    fs = tmpfs()
    state = str(fs / "state.json")
    p = _applied(tmp_path, emulator, state)
    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
    _refused_before_any_call(p, state, "Read-only file system")


def test_immutable_state_file(tmp_path, emulator):
    state = tmp_path / "st" / "state.json"
    state.parent.mkdir()
    p = _applied(tmp_path, emulator, str(state))
    if subprocess.run(["chattr", "+i", str(state)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable flag")
    try:
        _refused_before_any_call(p, str(state), "Operation not permitted")
    finally:
        subprocess.run(["chattr", "-i", str(state)], check=False)


def _fill(fs) -> None:
    with open(fs / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
        try:  # and the last partial block
            while True:
                fh.write(b"\0")
                fh.flush()
        except OSError:
            pass


def test_full_disk_before_the_run(tmp_path, emulator, tmpfs):
    fs = tmpfs()
    state = str(fs / "state.json")
    p = _applied(tmp_path, emulator, state)
    _fill(fs)
    _refused_before_any_call(p, state, "the disk is full")


def test_disk_full_mid_run_is_a_clear_error_and_the_rerun_converges(tmp_path, emulator, tmpfs):
    fs = tmpfs("1m")
    state = str(fs / "state.json")
    emu = emulator("aimable", targets=["sp1/col1"], api_key=API_KEY, latency_ms=80)
    p = Project(tmp_path / "proj", emu, "aimable")
    p.write({f"c{i:02d}": Spec() for i in range(12)})
    proc = p.popen_apply("--state", state, "--parallelism", "1")
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not any(
            k.startswith("POST ") for k in emu.stats["requests"]):
        time.sleep(0.005)
    _fill(fs)  # the disk fills while the first create is in flight
    out, err = p.collect(proc)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in out + err
    # stopped mid-run: what was done is listed, the rest was not started
    assert f"state {state}: cannot append to its journal (the disk is full)" in err, err
    assert "could not be recorded" in out and "Apply incomplete" in out, out
    (fs / "filler").unlink()
    p.state_ids  # noqa: B018 (the journal must load: checked by the re-run's own load below)
    r = p.apply("--state", state)
    assert r.code == 0, r.output
    # converged: one live connector per declared one (the create whose record failed is found again
    # through its idempotency key), and a plan with no changes
    assert len(emu_state(emu)["connectors"]) == 12
    r = p.run("plan", str(p.root), "--detailed-exitcode", "--state", state)
    assert r.code == 0 and "No changes." in r.stdout, r.output
