"""Ctrl-C during apply (issue 13), with real processes against the Aimable emulator.

Aimable stores no name, so only the state knows which live connector is which: a call the run
forgot to record would show as a duplicate after the re-apply. The first SIGINT stops starting new
actions, lets the calls in flight finish, writes the state and says what was done (exit 130); a
second aborts at once with the journal whole. SIGINT lands at seeded random points (bounded count),
then a re-apply converges: nothing duplicated, nothing lost, the summary printed.
"""
from __future__ import annotations

import random
import re
import signal
import time

from e2e_helpers import API_KEY, Project, Spec, emu_state

N = 12
SUMMARY = re.compile(r"Interrupted: (\d+) of (\d+) actions? done \((\d+) added, (\d+) changed, (\d+) replaced, "
                     r"(\d+) destroyed[^)]*\); run apply again to finish\.")


def _project(tmp_path, emulator) -> Project:
    emu = emulator("aimable", targets=["sp1/col1", "sp1/col2"], api_key=API_KEY, latency_ms=60)
    return Project(tmp_path / "interrupt", emu, "aimable")


def _writes(emu) -> int:
    counts = emu.stats["requests"]
    return sum(v for k, v in counts.items() if k.startswith(("POST ", "DELETE ")))


def _interrupt_after(p: Project, writes: int, *, signals: int = 1):  # type: ignore[no-untyped-def]
    """Start apply, send SIGINT once it made ``writes`` more write calls; (exit code, stdout, stderr)."""
    base = _writes(p.emu)
    proc = p.popen_apply("--parallelism", "2")
    deadline = time.monotonic() + 60
    while proc.poll() is None and _writes(p.emu) < base + writes and time.monotonic() < deadline:
        time.sleep(0.005)
    for _ in range(signals):
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            time.sleep(0.02)
    out, err = p.collect(proc)
    return proc.returncode, out, err


def test_first_sigint_finishes_in_flight_records_and_reports_then_reapply_converges(tmp_path, emulator):
    rng = random.Random(1313)
    p = _project(tmp_path, emulator)
    p.write({f"c{i:02d}": Spec() for i in range(N)})
    interrupted = 0
    for _ in range(3):  # creates interrupted at random points, each re-apply picks up the rest
        code, out, err = _interrupt_after(p, rng.randint(1, 5))
        if code == 0:
            break  # it finished before the signal landed: nothing to check for this point
        assert code == 130, out + err
        assert "Traceback" not in out + err
        match = SUMMARY.search(out)
        assert match, out + err
        done, total, added = int(match[1]), int(match[2]), int(match[3])
        assert 0 < done <= total and added == done, out  # all may have been in flight already
        # what it says it did is what the state holds, and what lives: nothing unrecorded
        assert len(p.state_ids()) == len(emu_state(p.emu)["connectors"]), (p.state_ids(), out)
        interrupted += 1
    assert interrupted >= 1
    r = p.apply()  # the rest, or nothing when the last interruption had everything in flight already
    assert r.code == 0 and ("Apply complete!" in r.stdout or "No changes." in r.stdout), r.output
    p.assert_converged()

    # replaces (create-first) interrupted: never fewer live connectors than the manifest had
    p.write({f"c{i:02d}": Spec(alt=True) for i in range(N)})
    code, out, err = _interrupt_after(p, rng.randint(2, 8))
    assert code in (0, 130), out + err
    assert len(emu_state(p.emu)["connectors"]) >= N
    if code == 130:
        assert SUMMARY.search(out), out
    r = p.apply()
    assert r.code == 0, r.output
    p.assert_converged()


def test_second_sigint_aborts_at_once_with_the_journal_whole(tmp_path, emulator):
    p = _project(tmp_path, emulator)
    p.write({f"c{i:02d}": Spec() for i in range(N)})
    started = time.monotonic()
    code, out, err = _interrupt_after(p, 2, signals=2)
    assert code == 130, out + err
    assert time.monotonic() - started < 30
    assert "Traceback" not in out + err
    assert "Aborted (interrupted twice)" in err or "Interrupted:" in out, out + err
    p.state_ids()  # the journal loads: no half record
    r = p.apply()
    assert r.code == 0, r.output
    p.assert_converged()


def test_sigterm_while_planning_is_an_interruption_not_a_crash(tmp_path):
    """A cancelled CI job sends SIGTERM; before any action it ends as `interrupted`, exit 130."""
    import socket
    import subprocess
    import sys

    from conftest import ROOT  # noqa: F401  (the CLI runs from this checkout)

    silent = socket.socket()  # accepts connections, never answers: the plan's list call hangs
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        (tmp_path / "m.yaml").write_text(f"""version: 1
providers:
  aw: {{type: airweave, url: "http://127.0.0.1:{silent.getsockname()[1]}", api_key: "${{AW_KEY}}"}}
connectors:
  docs:
    provider: aw
    source: github
    target: coll-one
    scope: {{repo_name: org/docs}}
    credentials: {{personal_access_token: "${{AW_KEY}}"}}
""")
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
        proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", str(tmp_path), "--yes"],
                                env={**env, "AW_KEY": "key-for-sigterm", "NO_COLOR": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the list call is in flight
            silent.settimeout(0.2)
            try:
                conn, _ = silent.accept()
                break
            except OSError:
                continue
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, out + err
        assert "Traceback" not in out + err and "error: interrupted" in err, err
        conn.close()
    finally:
        silent.close()
