"""``reconcile status``: one table of every declared connector's live status, last sync and next run."""
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import click
from croniter import croniter

from .. import console, redact
from ..errors import ProviderError
from ..model import Connector, LiveConnector
from ..providers import Provider
from ..providers.base import ConnectorStatus, SyncJob
from ..schedule_text import describe
from ..syncing import describe_progress, locate
from ..textsafe import escape
from ._common import load_manifest, manifest_options, open_engine

FORMAT_VERSION = 1
NOT_CREATED = "not created"


# -- tables, shared with `reconcile sync` --------------------------------------------------------
def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None) -> None:
    """A rich table on a TTY, plain aligned columns otherwise (CI logs, pipes); secrets scrubbed."""
    # names, statuses and errors come from manifests and platforms: controls escaped, and cells are
    # plain Text on a TTY (a "[bold]" or "[link=...]" in a value is not rich markup)
    rows = [[escape(redact.scrub(cell)) for cell in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", header_style="bold")
        for h in headers:
            table.add_column(h, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        Console(file=sys.stdout, highlight=False).print(table)
        return
    if title:
        console.out(title)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    for line in [list(headers), *rows]:
        console.out("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def when(iso: str | None) -> str:
    """``2025-01-31 14:05 UTC`` for a platform timestamp (as given when it is not ISO 8601)."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- one row -------------------------------------------------------------------------------------
@dataclass(slots=True)
class Row:
    connector: Connector
    type: str
    live: LiveConnector | None
    status: ConnectorStatus | None = None
    error: str | None = None

    @property
    def shown_status(self) -> str:
        if self.live is None:
            return NOT_CREATED
        if self.error:
            return "unknown"
        raw = (self.status.status if self.status else None) or self.live.status or "unknown"
        text = str(raw).upper().replace(" ", "_")
        last = self.status.last_sync if self.status else None
        # platforms that keep "active" while a sync runs: the job says more
        if last is not None and not last.done and text == "ACTIVE":
            return "SYNCING"
        return text

    @property
    def auth_url(self) -> str | None:
        return self.status.auth_url if self.status else None

    @property
    def last_sync(self) -> SyncJob | None:
        return self.status.last_sync if self.status else None

    def next_run(self, now: datetime) -> str | None:
        """When it syncs next (ISO 8601): the platform's own answer, else computed from the cron."""
        if self.status and self.status.next_run:
            return self.status.next_run
        cron = self.connector.schedule.cron if self.connector.schedule else None
        return croniter(cron, now).get_next(datetime).isoformat() if cron else None


def schedule_words(c: Connector) -> str:
    """The declared schedule in words: ``every hour``, ``at 03:00``, ``continuous``, ``manual``."""
    if c.syncs:
        return "; ".join(f"{name}: {describe(s.as_dict())}" for name, s in sorted(c.syncs.items()))
    return describe(c.schedule.as_dict() if c.schedule else None)


def _next_run_text(row: Row, now: datetime) -> str:
    at = row.next_run(now)
    c = row.connector
    if not at:
        return schedule_words(c)
    if not c.syncs and (c.schedule is None or c.schedule.form == "manual"):
        # the manifest sets no schedule, yet the platform has one of its own (Nango's per-sync
        # defaults): "manual" beside a date would contradict the date
        return f"{when(at)} (platform default)"
    return f"{when(at)} ({schedule_words(c)})"


def _last_sync_text(job: SyncJob | None) -> str:
    if job is None:
        return "never run"
    moment = when(job.finished_at or job.started_at)
    text = f"{job.status} {moment}".strip()
    if job.progress:
        text += f" ({describe_progress(job.progress)})"
    if job.status == "failed" and job.error:
        text += f": {job.error}"
    return text


def _fetch(provider: Provider, row: Row) -> None:
    assert row.live is not None
    try:
        row.status = provider.status(row.live)
    except ProviderError as exc:
        row.error = redact.scrub(str(exc))


def _json(row: Row, now: datetime) -> dict[str, Any]:
    last = row.last_sync
    return {
        "name": row.connector.name,
        "provider": row.connector.provider,
        "type": row.type,
        "id": row.live.id if row.live else None,
        "status": row.shown_status,
        "auth_url": row.auth_url,
        "last_sync": None if last is None else {
            "id": last.id, "status": last.status, "started_at": last.started_at, "finished_at": last.finished_at,
            "error": last.error, "progress": dict(last.progress),
        },
        "next_run": row.next_run(now),
        "schedule": schedule_words(row.connector),
        "error": row.error,
        "note": row.status.note if row.status else None,
    }


@click.command("status")
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@manifest_options
def command(path: str, fmt: str, sandbox: bool, state_path: str | None, parallelism: int) -> None:
    """One table of every declared connector: live status, last sync, next run."""
    manifest = load_manifest(path, sandbox=sandbox, state_path=state_path)
    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        names = sorted(manifest.connectors)
        found = locate(engine, names)
        rows = [Row(manifest.connectors[n], manifest.providers[manifest.connectors[n].provider].type, found[n])
                for n in names]
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            list(pool.map(lambda r: _fetch(engine.providers[r.connector.provider], r),
                          [r for r in rows if r.live is not None]))
    now = datetime.now(timezone.utc)
    if fmt == "json":
        console.out(json.dumps({"format_version": FORMAT_VERSION,
                                "connectors": [_json(r, now) for r in rows]}, indent=2))
        return
    table = []
    for r in rows:
        provider = r.connector.provider if r.connector.provider == r.type else f"{r.connector.provider} ({r.type})"
        table.append([r.connector.name, provider, r.shown_status,
                      ("no sync" if r.status and r.status.note else _last_sync_text(r.last_sync)) if r.live else "",
                      _next_run_text(r, now) if r.live else schedule_words(r.connector)])
    print_table(["CONNECTOR", "PROVIDER", "STATUS", "LAST SYNC", "NEXT RUN"], table)
    notes = []
    for r in rows:
        if r.auth_url:
            notes.append(f"{r.connector.name} waits for authorization: open {r.auth_url}")
        if r.status and r.status.note:
            notes.append(f"{r.connector.name}: {r.status.note}")
        if r.error:
            notes.append(f"{r.connector.name}: status unavailable: {r.error}")
    missing = [r.connector.name for r in rows if r.live is None]
    if missing:
        notes.append(f"{len(missing)} connector{'s' if len(missing) != 1 else ''} not created yet "
                     f"({', '.join(missing)}): run `reconcile apply {path}`")
    if notes:
        console.out("")
        for n in notes:
            console.out(n)
