"""The cyclic collector is kept off loading and planning in reconcile's own process only."""
from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_reporting

SRC = str(Path(__file__).resolve().parent.parent / "src")


def test_a_cli_process_pauses_the_collector_then_freezes_what_the_phase_built():
    code = ("import gc, sys; sys.path.insert(0, %r)\n"
            "from reconciler import _process_flags, _gc\n"
            "_process_flags.AS_CLI_PROCESS = True\n"
            "before = gc.get_freeze_count()\n"
            "with _gc.paused():\n"
            "    inside = gc.isenabled()\n"
            "    kept = [[i] for i in range(1000)]\n"
            "print(inside, gc.isenabled(), gc.get_freeze_count() - before >= 1000)\n") % SRC
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_a_program_calling_the_library_keeps_its_collector():
    from reconciler import _gc, _process_flags

    assert not _process_flags.AS_CLI_PROCESS
    before = gc.get_freeze_count()
    with _gc.paused():
        assert gc.isenabled()
    assert gc.get_freeze_count() == before


def _manifest(tmp_path, url: str, count: int) -> str:
    body = "".join(f"  conn-{i}:\n    provider: aw\n    source: github\n    target: docs-x1\n"
                   f"    scope: {{repo_name: org/r{i}}}\n    credentials:\n      personal_access_token: ${{K}}\n"
                   for i in range(count))
    (tmp_path / "m.yaml").write_text(f"version: 1\nproviders:\n  aw:\n    type: airweave\n    url: {url}\n"
                                     "    api_key: ${K}\nconnectors:\n" + body)
    return str(tmp_path)


def test_a_cli_plan_runs_without_the_collector_and_leaves_no_cyclic_garbage(tmp_path, emulator):
    """Planning in reconcile's own process: the collector off while the state is read, the platforms
    listed and the actions decided (a plan makes no cycles), back on for what follows."""
    emu = emulator("airweave", targets=["docs-x1"])
    setup = ("import gc\nfrom reconciler import engine\nseen = []\nreal = engine.Engine._plan_provider\n"
             "def listing(self, name, ctx):\n    seen.append(gc.isenabled())\n    return real(self, name, ctx)\n"
             "engine.Engine._plan_provider = listing")
    said = cli_reporting(["plan", _manifest(tmp_path, emu.url, 3)], "seen, gc.isenabled(), gc.collect()",
                         env={"K": "test-key"}, setup=setup)
    assert said == "0 [False] True 0"


def test_a_cli_plan_holds_what_it_built_to_the_exit_and_a_library_call_does_not(tmp_path, emulator, monkeypatch):
    """reconcile's own process ends with os._exit: a command's manifest, engine and plan are held
    to it instead of being freed one object at a time as the command returns."""
    emu = emulator("airweave", targets=["docs-x1"])
    root = _manifest(tmp_path, emu.url, 1)
    said = cli_reporting(["plan", root], "sorted(type(o).__name__ for o in _process_flags._KEPT)",
                         env={"K": "test-key"}, setup="from reconciler import _process_flags")
    assert said == "0 ['Context', 'Engine', 'Manifest', 'Plan']"

    from reconciler import _process_flags, cli

    monkeypatch.setenv("K", "test-key")
    with pytest.raises(SystemExit) as done:  # in-process: main(argv) returns through SystemExit
        cli.main(["plan", root])
    assert done.value.code == 0 and _process_flags._KEPT == []
