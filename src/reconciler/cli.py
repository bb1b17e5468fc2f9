"""The ``reconcile`` command line: a thin layer over the Python API.

Each command lives in ``reconciler/commands/<name>.py`` and exports ``command``. User mistakes
(:class:`~reconciler.errors.ReconcileError`) print as one clear message and exit 1, never as a
traceback; exit 2 is reserved for "changes present" (``--detailed-exitcode``, ``drift``).
"""
from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import sys

import click

from . import _process_flags, console
from .errors import ManifestError, ReconcileError

# in the order ``reconcile --help`` lists them
COMMANDS = ("validate", "plan", "apply", "import_", "drift", "sync", "status", "state", "fmt", "schema", "emulate")


class _Group(click.Group):
    """Imports a command's module only when that command runs: `reconcile plan` never loads the
    emulators, the executor or the formatter (a tenth of a second of every start)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name.rstrip("_") for name in COMMANDS]  # definition order, not alphabetical

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = f"{cmd_name}_" if f"{cmd_name}_" in COMMANDS else cmd_name
            if module not in COMMANDS:
                return None
            command = importlib.import_module(f".commands.{module}", __package__).command
            _accept_verbose(command)
            self.add_command(command)
        return self.commands.get(cmd_name)


def _accept_verbose(command: click.Command) -> None:
    """``reconcile apply -v`` works like ``reconcile -v apply``: people add -v where they stand."""
    for cmd in [command, *getattr(command, "commands", {}).values()]:
        if any("-v" in getattr(p, "opts", ()) for p in cmd.params):
            continue
        cmd.params.append(click.Option(["-v", "--verbose"], count=True, expose_value=False, is_eager=True,
                                       callback=_more_verbose, help="More detail on stderr (as `reconcile -v`)."))


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        root = logging.getLogger("reconciler")
        root.setLevel(min(root.level or logging.WARNING, logging.WARNING) - 10 * value)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="connector-reconciler", prog_name="reconcile")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (retries, calls).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="HOST",
              help="Also send API keys to HOST (repeatable; *.domain for subdomains; written http://HOST, "
                   "plain http too), like RECONCILE_ALLOWED_HOSTS.")
def cli(verbose: int, allow_hosts: tuple[str, ...]) -> None:
    """Plan and apply data-source connectors on SaaS platforms from YAML in git.

    \b
    Exit codes: 0 success / no changes, 1 error, 2 changes present
    (plan --detailed-exitcode, drift).
    """
    if allow_hosts:
        from . import hosts

        hosts.COMMAND_LINE_HOSTS[:] = [h for arg in allow_hosts for h in arg.split(",")]
    level = logging.WARNING - 10 * verbose
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("reconciler")
    root.handlers[:] = [handler]
    root.setLevel(level)


class _ScrubbingFormatter(logging.Formatter):
    # -v logs carry request URLs and platform bodies: the same masking and escaping as errors
    def format(self, record: logging.LogRecord) -> str:
        from . import redact
        from .textsafe import escape

        return escape(redact.mask_env_text(redact.scrub(super().format(record))))


def _interrupted() -> None:
    """Out at once: worker threads may be waiting on a platform's answer, and raising
    KeyboardInterrupt would first join them (up to the HTTP timeout, with retries). Only reads can be
    in flight here: an apply's executor handles its own interruption between actions."""
    console.error("interrupted")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)


def main(argv: list[str] | None = None) -> None:
    if argv is not None:  # in-process: the caller's interpreter goes on
        return _run(argv)
    try:
        _run(None)
    except SystemExit as exc:
        _exit_now(exc.code)


def _exit_now(code: object) -> None:
    """Out without the interpreter's teardown, which frees every object one by one (~60 ms after a
    plan of 10,000 connectors, for nothing). Everything the run must leave is written already:
    state writes are fsynced as they happen, every pool and client is closed by its ``with``; what
    is left is buffered output."""
    if isinstance(code, str):  # sys.exit("message"), as Python would print it
        print(code, file=sys.stderr)
        code = 1
    status = code if isinstance(code, int) else 0 if code is None else 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can be said
            status = status or 1
    os._exit(status)


def _run(argv: list[str] | None) -> None:
    # A run allocates hundreds of thousands of small acyclic objects (YAML nodes, projections) and
    # keeps them to the end; with the default thresholds the cyclic collector rescans that growing
    # heap again and again, which made loading 40,000 connectors 2.3x slower (and superlinear).
    gc.set_threshold(50_000, 20, 100)
    # Ctrl-C, or SIGTERM from a cancelled CI job: out at once (an apply's executor takes these over
    # while it acts, to stop between actions instead). Only as the process itself: a caller that
    # runs main() in-process (argv given) keeps its own handlers.
    if argv is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda _signum, _frame: _interrupted())
        _process_flags.AS_CLI_PROCESS = True
    try:
        cli.main(args=argv, prog_name="reconcile", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _interrupted()
        console.error("aborted")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1 if exc.exit_code == 2 else exc.exit_code)  # usage errors are errors: 1
    except ManifestError as exc:
        from . import redact

        for diagnostic in exc.diagnostics:
            # a diagnostic quotes the value it refuses, which may have come from any CI variable
            # (`target: "${AWS_SECRET_ACCESS_KEY}"` fails the target pattern)
            console.err(redact.mask_env_text(str(diagnostic)))
        n = len(exc.diagnostics)
        console.error(f"{n} error{'s' if n != 1 else ''} in the manifests; nothing was contacted")
        sys.exit(1)
    except ReconcileError as exc:
        console.error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit:
        raise
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    else:
        sys.exit(0)
