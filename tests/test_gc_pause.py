"""The cyclic collector is kept off loading and planning in reconcile's own process only."""
from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

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
