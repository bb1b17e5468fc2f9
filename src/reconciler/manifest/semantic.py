"""Checks beyond the schema: references between entries, cron syntax, platform limits, renames."""
from __future__ import annotations

import os
import posixpath
import re
from typing import Any, Iterator
from urllib.parse import urlsplit

from ..errors import Diagnostic
from ..hosts import allow_entry, is_loopback
from . import cron as crons
from .durations import parse_duration
from .merge import Entry, Merged
from .schema import show, suggest

NANGO_MIN_INTERVAL = 30  # seconds; Nango refuses faster sync frequencies
# the longest `every`: past a year it is a typo (8760h meant as 876h?) or an overflow waiting in a
# platform's int32 seconds field, never a schedule anyone means; write `manual: true` instead
MAX_EVERY = 366 * 86400
# fields whose text becomes part of a URL path on some platform
_PATH_FIELDS = ("target", "member", "source")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check(merged: Merged, root: str | None = None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    out += _providers(merged)
    for entry in merged.connectors.values():
        if isinstance(entry.body, dict):
            out += _connector(entry, merged)
    out += _airstore_keys(merged)
    out += _moved(merged)
    out += _state_path(merged, root)
    return out


def _state_path(merged: Merged, root: str | None) -> Iterator[Diagnostic]:
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
            or _CONTROL.search(path) or normal in (".", ""):
        yield Diagnostic(f"state: path {path!r} must be a file path inside the manifest directory (relative, no "
                         "'..' leading out of it); write e.g. .reconcile/state.json", entry.location(("path",)))
        return
    if ".git" in normal.split("/"):
        yield Diagnostic(f"state: path {path!r} is inside .git/ (apply would write git's own files: hooks, config); "
                         "write e.g. .reconcile/state.json", entry.location(("path",)))
        return
    # relative to the manifest directory, as the file backend opens it (state/__init__.py)
    base = root if root and os.path.isdir(root) else os.path.dirname(root or entry.source.doc.file)
    target = os.path.realpath(os.path.join(base, normal))
    manifests = {os.path.realpath(e.source.doc.file) for e in _entries(merged)}
    for suffix in ("", ".journal"):
        if target + suffix in manifests:
            yield Diagnostic(f"state: path {path!r} is a manifest file (apply would overwrite it with the state); "
                             "write e.g. .reconcile/state.json", entry.location(("path",)))
            return
    if not _inside(target, base):
        yield Diagnostic(f"state: path {path!r} leads outside the manifest directory through a symlink; "
                         "write a path to a real directory inside it, e.g. .reconcile/state.json",
                         entry.location(("path",)))


def _entries(merged: Merged) -> Iterator[Entry]:
    yield from merged.providers.values()
    yield from merged.connectors.values()
    yield from merged.moved
    if merged.state is not None:
        yield merged.state


def _inside(path: str, directory: str) -> bool:
    root = os.path.realpath(directory or ".")
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _providers(merged: Merged) -> Iterator[Diagnostic]:
    for entry in merged.providers.values():
        body = entry.body
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or entry.is_unknown(("url",)):
            continue
        problem = _url_problem(body["url"])
        if problem and ("\n" in body["url"] or "\r" in body["url"]) and _from_env(entry, ("url",)):
            problem = None  # resolving the variable reported the line break already
        if problem:
            yield Diagnostic(f"provider {entry.name!r}: url {show(body['url'])} {problem}", entry.location(("url",)))
            continue
        parts = urlsplit(body["url"])
        if parts.scheme == "http" and parts.hostname and not is_loopback(parts.hostname) \
                and body.get("allow_insecure_http") is not True:
            yield Diagnostic(f"provider {entry.name!r}: plain http:// to {parts.hostname} would send the api key "
                             "unencrypted; use https://, or set allow_insecure_http: true (the CI must allow it too: "
                             f"RECONCILE_ALLOWED_HOSTS={allow_entry('http', parts.hostname)} in its environment)",
                             entry.location(("url",)))


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
    for key in _PATH_FIELDS:
        value = body.get(key)
        if isinstance(value, str) and value and not entry.is_unknown((key,)):
            problem = _segment_problem(value)
            if problem:
                yield Diagnostic(f"{key} {show(value)}: {problem}", entry.location((key,)))
    schedule = body.get("schedule")
    if isinstance(schedule, dict):
        yield from _schedule(entry, ("schedule",), schedule, nango=False)
    syncs = body.get("syncs")
    if isinstance(syncs, dict):
        kind = _types(merged).get(provider) if isinstance(provider, str) else None
        for sync_name, sched in syncs.items():
            if isinstance(sched, dict):
                yield from _schedule(entry, ("syncs", sync_name), sched, nango=kind == "nango")


def _from_env(entry: Entry, sub: tuple[str, ...]) -> bool:
    """Whether the value at SUB was written with a ${VAR} reference."""
    raw: Any = entry.source.doc.data
    for key in entry.path + sub:
        raw = raw.get(key) if isinstance(raw, dict) else None
    return isinstance(raw, str) and "${" in raw


def _segment_problem(value: str) -> str | None:
    """Why a target/member/source cannot go into a URL path, or None. Adapters percent-encode
    each segment, but '.' and '..' are resolved by HTTP clients, proxies and servers alike, so
    `../../admin` would reach another endpoint with the API key."""
    if _CONTROL.search(value):
        return "contains a control character or line break; write it on one line, without them"
    if value != value.strip():
        return "starts or ends with whitespace; remove it"
    if any(part in (".", "..") for part in value.split("/")):
        return "'.' and '..' are not names (they would walk up the platform's URL paths); write the real name"
    return None


def _url_problem(url: str) -> str | None:
    """Why a provider url is unusable (or dangerous), or None."""
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        return "contains whitespace, a line break or a control character (which would inject HTTP headers); remove it"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc}); write e.g. https://api.example.com or https://[2001:db8::1]:8443"
    if not host:
        return "has no host; write e.g. https://api.example.com"
    if port == 0:
        return "has port 0; write the port the API listens on (1-65535), or none for the default"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "carries user:password@; remove it (credentials belong in api_key, from the environment)"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "has a query or fragment; write the API's base URL only"
    return None


def _schedule(entry: Entry, path: tuple[str, ...], schedule: dict[str, Any], *, nango: bool) -> Iterator[Diagnostic]:
    cron = schedule.get("cron")
    if isinstance(cron, str) and not entry.is_unknown(path + ("cron",)):
        fields = cron.split()
        if len(fields) != 5:
            yield Diagnostic(f"cron {cron!r} has {len(fields)} fields; write exactly 5 "
                             "(minute hour day-of-month month day-of-week), like \"0 */6 * * *\"",
                             entry.location(path + ("cron",)))
        elif not (judged := crons.verdict(cron)).valid:
            yield Diagnostic(f"cron {cron!r} is not a valid cron expression; write 5 fields like \"0 */6 * * *\"",
                             entry.location(path + ("cron",)))
        elif not judged.fires:
            yield Diagnostic(f"cron {cron!r} never fires (no such date: check day-of-month against month); "
                             "write a date that exists, or schedule: {manual: true}", entry.location(path + ("cron",)))
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
        elif seconds > MAX_EVERY:
            yield Diagnostic(f"every: {every!r} is longer than 366 days; write at most every: 366d, or "
                             "schedule: {manual: true} for a connector that syncs only on demand",
                             entry.location(path + ("every",)))
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
