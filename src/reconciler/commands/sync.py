"""``reconcile sync``: start a sync of declared connectors and, with ``--wait``, watch it finish.

Exit codes: 0 every sync started (without ``--wait``) or completed (with it); 1 a sync failed or
could not start; 2 none failed but some were still running when ``--timeout`` ran out (they go on
on the platform: not a failure, not yet a success; like ``plan --detailed-exitcode``, 2 asks the
caller to look again later); 130 interrupted (running syncs cancelled where the platform can).
Connectors with nothing to sync (no sync API, or a Nango connection without syncs) are skipped at
once, not watched.
"""
from __future__ import annotations

import signal
import sys
from contextlib import ExitStack
from typing import Callable

import click

from .. import console, redact
from ..errors import ReconcileError
from ..manifest.durations import parse_duration
from ..syncing import SyncRun, Watcher, cancel, check_names, describe_progress, display_id, locate, start
from ..textsafe import escape
from ._common import interactive, load_manifest, manifest_options, open_engine
from .status import print_table


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _state_text(run: SyncRun) -> str:
    job = run.job
    text = run.result if job is None or run.timed_out or run.error else job.status
    if job is not None and job.progress:
        text += f" ({describe_progress(job.progress)})"
    if run.trouble:
        text += f" [{run.trouble}]"
    return text


# -- live progress -------------------------------------------------------------------------------
class _Lines:
    """CI and pipes: one stderr line whenever a run's status or progress changes."""

    def __init__(self, runs: list[SyncRun]) -> None:
        self.runs = runs

    def __enter__(self) -> "_Lines":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def changed(self, run: SyncRun) -> None:
        console.progress(f"{run.label}: {_state_text(run)}")


class _Live:
    """A terminal: one row per connector, redrawn in place (rich, on stderr)."""

    def __init__(self, runs: list[SyncRun]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.runs = runs
        self.live = Live(self._table(), console=Console(stderr=True, highlight=False), refresh_per_second=8,
                         transient=True)

    def _table(self):  # type: ignore[no-untyped-def]
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, header_style="bold", pad_edge=False)
        for h in ("CONNECTOR", "PROVIDER", "STATUS"):
            table.add_column(h)
        for run in self.runs:  # plain Text: a platform's status or error is never rich markup
            table.add_row(run.name, run.provider, Text(escape(redact.scrub(_state_text(run)))))
        return table

    def __enter__(self) -> "_Live":
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def changed(self, _run: SyncRun) -> None:
        self.live.update(self._table())


def _view(runs: list[SyncRun]) -> _Lines | _Live:
    return _Live(runs) if sys.stderr.isatty() else _Lines(runs)


# -- the command ---------------------------------------------------------------------------------
@click.command("sync")
@click.argument("path", type=click.Path(exists=True))
@click.option("--only", "only", multiple=True, metavar="NAME", help="Sync only this connector (repeatable).")
@click.option("--wait", is_flag=True, help="Watch the syncs until they finish; exit 1 if any fails.")
@click.option("--timeout", default="30m", show_default=True, callback=_duration,
              help="With --wait: stop watching after this long (30s, 15m, 1h). Syncs still running then are "
                   "reported as timed out, not failed (they go on on the platform); exit 2 if any timed out "
                   "and none failed.")
@manifest_options
def command(path: str, only: tuple[str, ...], wait: bool, timeout: int, sandbox: bool, state_path: str | None,
            parallelism: int) -> None:
    """Start a sync of the declared connectors (all, or --only NAME) and optionally wait for it.

    Exit 0 all started (or, with --wait, completed or skipped), 1 a sync failed or could not start,
    2 (with --wait) none failed but some were still running at --timeout, 130 interrupted.
    """
    manifest = load_manifest(path, sandbox=sandbox, state_path=state_path)
    names = check_names(manifest, only)
    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        providers = engine.providers
        runs = [SyncRun(n, manifest.connectors[n].provider, manifest.providers[manifest.connectors[n].provider].type)
                for n in names]
        syncable = [r for r in runs if providers[r.provider].capabilities.can_sync]
        found = locate(engine, [r.name for r in syncable])
        missing = [r.name for r in syncable if found[r.name] is None]
        if missing:
            raise ReconcileError(
                f"not created yet: {', '.join(missing)}; run `reconcile apply {path}` first, then sync")
        for r in syncable:
            r.live = found[r.name]
        start(providers, runs, parallelism=parallelism)
        for r in runs:
            if r.skipped:
                console.out(f"{r.label}: skipped: {r.skipped}")
            elif r.error:
                if not wait:  # with --wait the report below says it, once
                    console.error(f"{r.label}: {r.error}")
            else:
                assert r.job is not None
                console.out(f"{r.label}: sync started, job {display_id(r.job.id)}")
        if not wait:
            if any(r.error for r in runs):
                sys.exit(1)
            return
        interrupted = _watch(providers, runs, timeout=timeout, parallelism=parallelism)
        if interrupted:
            _cancel_on_interrupt(providers, runs, parallelism=parallelism)
    _report(runs, interrupted=interrupted)
    if interrupted:
        sys.exit(130)
    if any(r.failed for r in runs):
        sys.exit(1)
    if any(r.timed_out for r in runs):
        sys.exit(2)


def _watch(providers, runs: list[SyncRun], *, timeout: int, parallelism: int) -> bool:  # type: ignore[no-untyped-def]
    """Watch until done or timeout; True when Ctrl-C stopped it."""
    # Ctrl-C while watching means "cancel the syncs" (the CLI's own handler would end the process at
    # once, leaving them running): take SIGINT back as KeyboardInterrupt for the watch
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _view(runs) as view:
            changed: Callable[[SyncRun], None] = view.changed
            try:
                Watcher(providers, runs, timeout=timeout, on_change=changed, parallelism=parallelism).run()
            except KeyboardInterrupt:
                return True
        return False
    finally:
        signal.signal(signal.SIGINT, previous)


def _cancel_on_interrupt(providers, runs: list[SyncRun], *, parallelism: int) -> None:  # type: ignore[no-untyped-def]
    running = [r for r in runs if r.active]
    if not running:
        console.err("interrupted; no sync was still running")
        return
    cancellable = [r for r in running if providers[r.provider].capabilities.can_cancel_sync]
    for r in running:
        if r not in cancellable:
            console.err(f"{r.label}: {r.platform} cannot cancel a sync through its API; "
                        f"sync {display_id(r.job.id) if r.job else ''} keeps running there")
    if not cancellable:
        return
    if interactive():
        try:
            go = click.confirm(f"Interrupted. Cancel {len(cancellable)} running sync"
                               f"{'s' if len(cancellable) != 1 else ''} on the platform?", default=True, err=True)
        except click.exceptions.Abort:
            go = False
        if not go:
            console.err("left the syncs running")
            return
    console.err(f"interrupted; cancelling {len(cancellable)} running sync{'s' if len(cancellable) != 1 else ''}...")
    cancel(providers, cancellable, parallelism=parallelism)
    for r in cancellable:
        if r.error:
            console.error(f"{r.label}: {r.error}")
        elif r.job is not None and r.job.status == "cancelled":
            console.err(f"{r.label}: cancelled sync {display_id(r.job.id)}")
        elif r.job is not None:
            console.err(f"{r.label}: sync {display_id(r.job.id)} had already ended: {r.job.status}")


def _report(runs: list[SyncRun], *, interrupted: bool) -> None:
    cancelled = [r for r in runs if r.result == "cancelled"]
    failed = [r for r in runs if r.failed and r not in cancelled]
    # a cancel the user asked for is no error; one done elsewhere (a dashboard) is worth saying
    errors = failed + ([] if interrupted else cancelled)
    rows = []
    for r in runs:
        job = r.job
        # each problem is said once: errors on stderr below, the rest (skips, timeouts) in the table
        detail = r.skipped or ("" if r in errors else r.problem) or ""
        rows.append([r.name, r.provider, display_id(job.id) if job else "", r.result,
                     describe_progress(job.progress) if job else "", detail])
    headers = ["CONNECTOR", "PROVIDER", "JOB", "RESULT", "PROGRESS", "DETAIL"]
    if not any(row[-1] for row in rows):  # all went well: no empty column
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    console.out("")
    print_table(headers, rows)
    for r in errors:
        console.error(f"{r.label}: {r.problem}")
    done = sum(1 for r in runs if r.result == "completed")
    timed_out = sum(1 for r in runs if r.timed_out)
    console.out("")
    console.out(f"Sync: {done} completed, {len(failed)} failed, {len(cancelled)} cancelled, "
                f"{sum(1 for r in runs if r.skipped)} skipped" + (f", {timed_out} timed out." if timed_out else "."))
