"""No secret in any byte the tool writes, on every platform, errors included.

Each platform's e2e flow runs with a secret scan over stdout, stderr (with ``-v``: retry log lines),
plan files and everything under the manifest directory (state, journal, lock), for every secret
used: raw, base64 (padded or not, URL-safe), URL-encoded and JSON-escaped. The emulator's
``echo_rate`` knob makes the platform refuse writes with a 422 that quotes the submitted body,
credentials included (and a token with characters JSON escapes): the CLI must name the failed
actions and show ``(sensitive)`` in place of the value.
"""
from __future__ import annotations

import pytest

from e2e_helpers import PLATFORMS, Project, Spec, emu_stats, quiet, set_faults, start


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_secret_leaks_even_when_the_platform_echoes_it(tmp_path, emulator, platform):
    emu = start(emulator, platform)
    project = Project(tmp_path / "m", emu, platform)
    project.write({"conn-a": Spec(), "conn-b": Spec(token="TOK_B")})
    set_faults(emu, echo_rate=1.0)
    r = project.run("-v", "apply", str(project.root), "--yes")
    assert r.code == 1, r.output
    assert "Apply incomplete: 2 of 2 actions failed" in r.stdout, r.output
    assert "p.conn-a (create): " in r.stdout and "p.conn-b (create): " in r.stdout
    assert "rejected (emulated)" in r.output and "(sensitive)" in r.output, r.output
    assert emu_stats(emu)["faults"]["echo"] >= 2
    quiet(emu)
    set_faults(emu, echo_rate=0.0)
    planfile = project.root / ".reconcile" / "plan.json"
    assert project.run("plan", str(project.root), "-o", str(planfile)).code == 0
    assert project.run("-v", "apply", str(planfile)).code == 0
    project.write({"conn-a": Spec(token="TOK_B", scope="v2"), "conn-b": Spec(token="TOK_A")})  # rotate both
    set_faults(emu, echo_rate=1.0)
    r = project.run("-v", "apply", str(project.root), "--yes")
    assert r.code == 1 and "(sensitive)" in r.output, r.output
    set_faults(emu, echo_rate=0.0)
    assert project.apply().code == 0
    project.assert_converged()
    project.assert_no_secret_written()
