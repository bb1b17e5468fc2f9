"""A fork server for the test suite: every ``reconcile`` run is still a real process, minus the imports.

Starting ``python -m reconciler`` costs ~0.3 s of CPU before the first line of the command runs
(the interpreter, httpx, click, yaml, the manifest schema). The suite runs the CLI close to a
thousand times, so most of its CPU went on imports. This server imports the CLI once, then forks a
fresh child per run: the child gets the caller's stdin/stdout/stderr (passed as file descriptors),
working directory, environment and arguments, runs ``reconciler.cli.main`` and exits with its
code. The child is a real process with its own pid, files, sockets and signals, started from a
state in which nothing has run yet (the server never runs a command itself).

Protocol (AF_UNIX, SOCK_SEQPACKET): the client sends one JSON message ``{args, env, cwd}`` with
three file descriptors; the server answers ``{"pid": N}`` and, when the child has exited,
``{"exit": code}`` (negative: killed by that signal, as subprocess reports it).
"""
from __future__ import annotations

import atexit
import importlib
import io
import json
import os
import selectors
import signal
import socket
import sys
import traceback


def _warm() -> None:
    """Import what a run would: the CLI, every command, every adapter, the emulators (--sandbox).

    As ``reconcile``'s main() does before its imports, so that they are the ones a CLI process
    makes (reconciler.http loads httpcore without trio then: otherwise every child would import
    httpcore, and trio with it, at its first client — ~0.1 s of CPU per run).
    """
    from reconciler import _process_flags

    _process_flags.AS_CLI_PROCESS = True
    from reconciler import cli, providers
    from reconciler.manifest import schema

    for name in cli.COMMANDS:
        importlib.import_module(f"reconciler.commands.{name}")
    for kind in providers.TYPES:
        providers.provider_class(kind)
    importlib.import_module("reconciler.sandbox")
    schema._schema()
    # the compiled validators every load builds (pure, cached per process)
    for def_name in (None, "connector", *(schema._connector_def(t) for t in schema.connector_types())):
        schema._fast_validator(def_name)


def _child(request: dict, fds: list[int], close: list[int]) -> None:
    """In the forked child: become the process the caller asked for, run the command, exit."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in close:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["reconcile", *request["args"]]
        from reconciler import cli

        try:
            cli.main()  # argv from sys.argv, as `python -m reconciler` does (and so its signal handlers)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, (int, type(None))):
                print(exc.code, file=sys.stderr)
        except KeyboardInterrupt:
            traceback.print_exc()
            code = 130
        except BaseException:  # noqa: BLE001 - what the interpreter would print for an uncaught exception
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - a closed pipe: the code still stands
            pass
        os._exit(code)


def serve(path: str) -> None:
    _warm()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
                request = json.loads(message)
                pid = os.fork()
                if pid == 0:
                    _child(request, fds, [listener.fileno(), wake_r, wake_w, conn.fileno(),
                                          *(c.fileno() for c in children.values())])
                for fd in fds:
                    os.close(fd)
                conn.send(json.dumps({"pid": pid}).encode())
                children[pid] = conn
            else:
                os.read(wake_r, 4096)
                while children:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
                    conn = children.pop(pid, None)
                    if conn is not None:
                        try:
                            conn.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                        except OSError:
                            pass  # the caller gave up (timeout) and closed its end
                        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
