"""Shared fixtures: emulators on loopback ports, and the CLI run as a real process.

Every byte a CLI run writes (stdout, stderr) is kept in ``cli_outputs`` so secret-scanning tests can
search all of it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.emulators import EmulatorConfig, RunningEmulator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
            input: str | None = None, timeout: float = 120) -> Result:
    """Run ``reconcile ARGS`` in a subprocess (a real process, like CI does)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "NO_COLOR"))}
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, input=input, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def emulator():
    """Start a fresh emulator: ``emulator("airweave", targets=["docs-ab123"], fail_rate=0.3)``."""
    started: list[RunningEmulator] = []

    def start(type_name: str, **config) -> RunningEmulator:
        config.setdefault("api_key", "test-key")
        config.setdefault("sync_duration", 0.3)
        emu = RunningEmulator(type_name, EmulatorConfig(**config)).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
