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

import httpx

from reconciler.emulators import EmulatorConfig, RunningEmulator

ROOT = Path(__file__).resolve().parent.parent

# CI runs this suite with CI=true, which changes what the CLI says (a warning about a missing file
# state, no prompts): every test starts from a workstation's environment, and the tests about CI
# set it themselves
for _var in ("CI", "GITHUB_ACTIONS", "GITLAB_CI"):
    os.environ.pop(_var, None)


# The tests' own requests to emulators (reading /_emulator/state, seeding, checking raw API answers)
# share one client: httpx.get() and friends build a client, and its TLS context from certifi's
# bundle, per call (~40 ms of CPU each, hundreds of times a run). Same defaults (5 s timeout, no
# redirects); the emulators set no cookies.
EMU_HTTP = httpx.Client()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# the suite injects hundreds of 5xx, 429s and dropped connections: the same retries with a tenth of
# the production backoff (0.2 s base), so the waits do not dominate the run
FAST_RETRY = "0.02"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
            input: str | None = None, timeout: float = 120) -> Result:
    """Run ``reconcile ARGS`` in a real process of its own, as CI does.

    The process is forked from tests/forkserver.py, which has the CLI imported already (a third of a
    second less CPU per run, over most of the suite's thousand runs); ``CR_TEST_FRESH_PROCESS=1``
    starts ``python -m reconciler`` for every run instead.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "NO_COLOR"))}
    full_env["NO_COLOR"] = "1"
    full_env["RECONCILE_RETRY_BASE_DELAY"] = FAST_RETRY
    full_env.update(env or {})
    workdir = os.fspath(cwd) if cwd is not None else os.getcwd()
    if os.environ.get("CR_TEST_FRESH_PROCESS") == "1":
        proc = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True,
                              env=full_env, cwd=workdir, input=input, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)
    return _forked(list(args), full_env, workdir, input, timeout)


def cli_reporting(args: list[str], report: str, *, env: dict[str, str] | None = None, setup: str = "") -> str:
    """Run ``reconcile ARGS`` as its own fresh process (``main()`` with no argv), having run the
    Python ``setup`` first, and return the last line it printed: the exit code and the value of the
    Python expression ``report``, evaluated as the process ends (its ``os._exit`` skips any teardown
    a test could look at afterwards)."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    code = (f"import os, sys\nsys.path.insert(0, {src!r})\nsys.argv = ['reconcile', *{list(args)!r}]\n{setup}\n"
            "from reconciler import cli\n"
            "real_exit = os._exit\n"
            "def exit_(code):\n"
            f"    print(code, {report}, flush=True)\n"
            "    real_exit(code)\n"
            "os._exit = exit_\n"
            "cli.main()\n")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "NO_COLOR"))}
    full_env.update(env or {}, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=full_env)
    lines = out.stdout.splitlines()
    assert lines, out.stderr
    return lines[-1]


def reconcile_command(bindir: Path) -> Path:
    """Write a ``reconcile`` executable into ``bindir`` (to put first on PATH) for tests that run
    shell scripts. Each run is a real process forked from the fork server, as :func:`run_cli`'s
    are (tests/forkclient.py); ``CR_TEST_FRESH_PROCESS=1`` makes it ``python -m reconciler``."""
    bindir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("CR_TEST_FRESH_PROCESS") == "1":
        run = f"{sys.executable} -m reconciler"
    else:
        run = f"{sys.executable} -IS {Path(__file__).with_name('forkclient.py')} {_fork_server()}"
    script = bindir / "reconcile"
    script.write_text(f'#!/bin/sh\nexec {run} "$@"\n')
    script.chmod(0o755)
    return script


_SERVER: dict[str, object] = {}


def _fork_server() -> str:
    """The socket of this test process's fork server, started on first use."""
    if "path" not in _SERVER:
        import atexit
        import tempfile

        path = os.path.join(tempfile.mkdtemp(prefix="cr-fork-"), "s")
        server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("forkserver.py")), path],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready", "fork server did not start"
        atexit.register(server.kill)
        _SERVER.update(path=path, proc=server)
    return _SERVER["path"]  # type: ignore[return-value]


def _forked(args: list[str], env: dict[str, str], cwd: str, input: str | None, timeout: float) -> Result:
    import json
    import signal
    import socket
    import threading
    import time

    pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr: (read, write)
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(_fork_server())
        socket.send_fds(conn, [json.dumps({"args": args, "env": env, "cwd": cwd}).encode()], theirs)
    finally:
        for fd in theirs:
            os.close(fd)
    out: dict[int, bytes] = {}

    def drain(fd: int) -> None:
        with open(fd, "rb") as fh:
            out[fd] = fh.read()

    readers = [threading.Thread(target=drain, args=(pipes[i][0],), daemon=True) for i in (1, 2)]
    for t in readers:
        t.start()
    with open(pipes[0][1], "wb") as stdin:
        if input:
            try:
                stdin.write(input.encode())
            except BrokenPipeError:
                pass
    deadline = time.monotonic() + timeout
    pid = json.loads(conn.recv(4096))["pid"]
    try:
        conn.settimeout(max(0.0, deadline - time.monotonic()))
        code = json.loads(conn.recv(4096))["exit"]
    except (socket.timeout, TimeoutError):
        os.kill(pid, signal.SIGKILL)
        raise subprocess.TimeoutExpired(["reconcile", *args], timeout) from None
    finally:
        conn.close()
    for t in readers:
        t.join()
    return Result(code, _text(out[pipes[1][0]]), _text(out[pipes[2][0]]))


def _text(data: bytes) -> str:
    """Bytes as subprocess's ``text=True`` decodes them (locale encoding, universal newlines)."""
    import io
    import locale

    return io.TextIOWrapper(io.BytesIO(data), encoding=locale.getpreferredencoding(False)).read()


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def emulator():
    """Start a fresh emulator: ``emulator("airweave", targets=["docs-ab123"], fail_rate=0.3)`` (on
    loopback unless ``host=`` names another address of this machine)."""
    started: list[RunningEmulator] = []

    def start(type_name: str, host: str = "127.0.0.1", **config) -> RunningEmulator:
        config.setdefault("api_key", "test-key")
        config.setdefault("sync_duration", 0.3)
        emu = RunningEmulator(type_name, EmulatorConfig(**config), host=host).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
