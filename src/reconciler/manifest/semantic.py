"""Checks beyond the schema: references between entries, cron syntax, platform limits, renames."""
from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from typing import Any, Iterator
from urllib.parse import urlsplit

from croniter import croniter

from ..errors import Diagnostic
from ..http import is_loopback
from .durations import parse_duration
from .merge import Entry, Merged
from .schema import suggest

NANGO_MIN_INTERVAL = 30  # seconds; Nango refuses faster sync frequencies


@lru_cache(maxsize=4096)
def _cron_valid(cron: str) -> bool:
    # thousands of connectors share a handful of schedules; croniter parses slowly
    return croniter.is_valid(cron)


def check(merged: Merged) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    out += _providers(merged)
    for entry in merged.connectors.values():
        if isinstance(entry.body, dict):
            out += _connector(entry, merged)
    out += _airstore_keys(merged)
    out += _moved(merged)
    out += _state_path(merged)
    return out


def _state_path(merged: Merged) -> Iterator[Diagnostic]:
    """A file state lives under the manifest directory: a manifest from a pull request must not make
    apply write (or read) a file elsewhere on the CI runner, e.g. ``../../etc/x`` or ``/tmp/x``."""
    entry = merged.state
    if entry is None or not isinstance(entry.body, dict) or entry.is_unknown(("path",)):
        return
    path = entry.body.get("path")
    if not isinstance(path, str):
        return
    normal = posixpath.normpath(path.replace("\\", "/"))
    if posixpath.isabs(normal) or re.match(r"^[A-Za-z]:", normal) or normal == ".." or normal.startswith("../") \
            or "\0" in path or normal in (".", ""):
        yield Diagnostic(f"state: path {path!r} must be a file path inside the manifest directory (relative, no "
                         "'..' leading out of it); write e.g. .reconcile/state.json", entry.location(("path",)))


def _providers(merged: Merged) -> Iterator[Diagnostic]:
    for entry in merged.providers.values():
        body = entry.body
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or entry.is_unknown(("url",)):
            continue
        parts = urlsplit(body["url"])
        if parts.scheme == "http" and parts.hostname and not is_loopback(parts.hostname) \
                and body.get("allow_insecure_http") is not True:
            yield Diagnostic(f"provider {entry.name!r}: plain http:// to {parts.hostname} would send the api key "
                             "unencrypted; use https://, or set allow_insecure_http: true", entry.location(("url",)))


def _types(merged: Merged) -> dict[str, str]:
    return {name: e.body.get("type") for name, e in merged.providers.items() if isinstance(e.body, dict)}


def provider_type(merged: Merged, connector: Entry) -> str | None:
    body = connector.body
    if not isinstance(body, dict) or not isinstance(body.get("provider"), str):
        return None
    provider = merged.providers.get(body["provider"])
    return provider.body.get("type") if provider is not None and isinstance(provider.body, dict) else None


def _connector(entry: Entry, merged: Merged) -> Iterator[Diagnostic]:
    body = entry.body
    provider = body.get("provider")
    if isinstance(provider, str) and provider not in merged.providers and not entry.is_unknown(("provider",)):
        if merged.providers:
            hint = suggest(provider, merged.providers) or f"; defined providers: {', '.join(sorted(merged.providers))}"
        else:
            hint = "; no providers are defined (add one under providers:)"
        yield Diagnostic(f"connector {entry.name!r} uses undefined provider {provider!r}{hint}",
                         entry.location(("provider",)))
    kind = _types(merged).get(provider) if isinstance(provider, str) else None
    schedule = body.get("schedule")
    if isinstance(schedule, dict):
        yield from _schedule(entry, ("schedule",), schedule, nango=False)
    syncs = body.get("syncs")
    if isinstance(syncs, dict):
        for sync_name, sched in syncs.items():
            if isinstance(sched, dict):
                yield from _schedule(entry, ("syncs", sync_name), sched, nango=kind == "nango")


def _schedule(entry: Entry, path: tuple[str, ...], schedule: dict[str, Any], *, nango: bool) -> Iterator[Diagnostic]:
    cron = schedule.get("cron")
    if isinstance(cron, str) and not entry.is_unknown(path + ("cron",)):
        fields = cron.split()
        if len(fields) != 5:
            yield Diagnostic(f"cron {cron!r} has {len(fields)} fields; write exactly 5 "
                             "(minute hour day-of-month month day-of-week), like \"0 */6 * * *\"",
                             entry.location(path + ("cron",)))
        elif not _cron_valid(cron):
            yield Diagnostic(f"cron {cron!r} is not a valid cron expression; write 5 fields like \"0 */6 * * *\"",
                             entry.location(path + ("cron",)))
        elif nango and _plain_interval(fields) is None:
            yield Diagnostic(f"nango sync frequencies are intervals: cron {cron!r} is not a plain interval; "
                             "write every: 15m, or a cron like \"*/15 * * * *\"", entry.location(path + ("cron",)))
    every = schedule.get("every")
    if isinstance(every, str) and not entry.is_unknown(path + ("every",)):
        try:
            seconds = parse_duration(every)
        except ValueError:
            return  # the schema reported it
        if seconds <= 0:
            yield Diagnostic("every must be longer than zero, like 1h", entry.location(path + ("every",)))
        elif nango and seconds < NANGO_MIN_INTERVAL:
            yield Diagnostic(f"nango syncs run at most every {NANGO_MIN_INTERVAL}s; write every: 30s or more",
                             entry.location(path + ("every",)))


def _plain_interval(fields: list[str]) -> int | None:
    """Seconds between runs when the cron is a plain interval (``*/15 * * * *``), else None."""
    def step(f: str) -> int | None:
        if f == "*":
            return 1
        if f.startswith("*/") and f[2:].isdigit() and int(f[2:]) > 0:
            return int(f[2:])
        return None
    minute, hour, dom, month, dow = fields
    if (month, dow) != ("*", "*"):
        return None
    if hour == dom == "*" and step(minute):
        return step(minute) * 60  # type: ignore[operator]
    if minute == "0" and dom == "*" and step(hour):
        return step(hour) * 3600  # type: ignore[operator]
    if minute == "0" and hour == "0" and step(dom):
        return step(dom) * 86400  # type: ignore[operator]
    return None


def _airstore_keys(merged: Merged) -> Iterator[Diagnostic]:
    # Airstore keeps one connection per (workspace, member, integration type): two manifest
    # connectors with the same key would overwrite each other on every apply
    types = _types(merged)
    seen: dict[tuple[Any, ...], Entry] = {}
    for entry in merged.connectors.values():
        body = entry.body
        if not isinstance(body, dict) or types.get(body.get("provider")) != "airstore":
            continue
        key = (body.get("provider"), body.get("target"), body.get("member") or "", body.get("source"))
        first = seen.setdefault(key, entry)
        if first is not entry:
            who = f"member {key[2]!r}" if key[2] else "the shared connection"
            yield Diagnostic(
                f"connectors {first.name!r} (at {first.location(key=True)}) and {entry.name!r} are the same airstore "
                f"connection ({key[3]} for {who} in workspace {key[1]!r}); airstore keeps one per workspace, member "
                "and integration type: merge them or set different members", entry.location(key=True))


def _moved(merged: Merged) -> Iterator[Diagnostic]:
    targets: dict[str, Entry] = {}
    sources: dict[str, Entry] = {}
    for entry in merged.moved:
        body = entry.body
        if not isinstance(body, dict):
            continue
        old, new = body.get("from"), body.get("to")
        if not isinstance(old, str) or not isinstance(new, str):
            continue
        if old == new:
            yield Diagnostic(f"moved: from and to are both {old!r}; remove this entry", entry.location(("to",)))
            continue
        if new not in merged.connectors:
            yield Diagnostic(f"moved: to {new!r} is not a declared connector" + suggest(new, merged.connectors),
                             entry.location(("to",)))
        if old in merged.connectors:
            yield Diagnostic(f"moved: from {old!r} is still declared under connectors; a renamed connector's old "
                             "name must be gone", entry.location(("from",)))
        if new in targets:
            yield Diagnostic(f"moved: {new!r} is reached from two entries (also at "
                             f"{targets[new].location(('to',))}); a connector can have only one old name",
                             entry.location(("to",)))
        else:
            targets[new] = entry
        if old in sources:
            yield Diagnostic(f"moved: {old!r} is moved twice (also at {sources[old].location(('from',))})",
                             entry.location(("from",)))
        else:
            sources[old] = entry
