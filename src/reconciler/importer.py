"""Live connectors -> manifest text: what ``reconcile import`` writes.

Pure (no I/O): it takes live projections (``LiveConnector.fields``, complete) and the
credential field names an adapter knows, and returns names, bodies and the YAML document. Names are
chosen to satisfy every platform's rules (the schema's name pattern, 4-42 characters for Airweave),
keep the platform's own name where it is already valid, and are deterministic: the same live
population gives the same file on every run. Credentials are only ever ``${VAR}`` placeholders.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from .model import LiveConnector
from .plan.diff import same

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MIN_LEN, MAX_LEN = 4, 42  # the narrowest platform's bounds (Airweave), so a name is valid everywhere


@dataclass(slots=True)
class Imported:
    """One live connector, as the manifest entry written for it."""

    name: str
    live: LiveConnector
    body: dict[str, Any]
    variables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    return re.sub(r"-{2,}", "-", s).strip("-._")


def valid_name(name: str) -> bool:
    return MIN_LEN <= len(name) <= MAX_LEN and bool(NAME.match(name))


def _base_name(live: LiveConnector) -> str:
    if live.name and valid_name(live.name):
        return live.name
    member = live.fields.get("member")
    raw = live.name or "-".join(p for p in (live.source, member) if p)
    base = slug(raw)[:MAX_LEN].strip("-._") or "connector"
    if len(base) < MIN_LEN:
        base = f"{base}-{slug(live.source) or 'connector'}"[:MAX_LEN]
        base = base if len(base) >= MIN_LEN else (base + "-imported")[:MAX_LEN]
    return base


def choose_names(lives: Iterable[LiveConnector], taken: Iterable[str]) -> dict[str, str]:
    """live id -> connector name, unique against ``taken`` and each other, stable across runs."""
    used = {t.lower() for t in taken}  # case-folded: names differing only by case confuse people and files
    out: dict[str, str] = {}
    for live in sorted(lives, key=lambda l: (_base_name(l), l.id)):
        base = name = _base_name(live)
        n = 2
        while name.lower() in used:
            suffix = f"-{n}"
            name = base[:MAX_LEN - len(suffix)].rstrip("-._") + suffix
            n += 1
        used.add(name.lower())
        out[live.id] = name
    return out


def variable_name(provider: str, name: str, field_name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"IMPORTED_{provider}_{name}_{field_name}".upper()).strip("_")


def duration(seconds: int) -> str:
    """The manifest's duration spelling (``1h30m``) for a number of seconds."""
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def schedule_body(schedule: Mapping[str, Any]) -> dict[str, Any]:
    if "every" in schedule:
        return {"every": duration(schedule["every"])}
    return dict(schedule)


def build(provider: str, live: LiveConnector, name: str, credentials: Mapping[str, str | None],
          defaults: Mapping[str, Any] | None = None) -> Imported:
    """The manifest body for one complete live connector (fields in the manifest's usual order).

    Scope values equal to the platform's defaults (``Provider.scope_defaults``) are left out: the
    manifest would otherwise own them, and pin them against a platform that changes its defaults."""
    f = live.fields
    body: dict[str, Any] = {"provider": provider, "source": f.get("source") or live.source}
    for key in ("target", "member", "description"):
        if f.get(key) is not None:
            body[key] = f[key]
    scope = f.get("scope")
    if isinstance(scope, dict) and defaults:
        scope = {k: v for k, v in scope.items() if not (k in defaults and same(v, defaults[k]))}
    if scope:
        body["scope"] = scope
    if f.get("schedule"):
        body["schedule"] = schedule_body(f["schedule"])
    if f.get("syncs"):
        body["syncs"] = {k: schedule_body(v) for k, v in f["syncs"].items()}
    item = Imported(name, live, body)
    if credentials:
        creds: dict[str, str] = {}
        for key, literal in credentials.items():
            if literal is not None:
                creds[key] = literal
            else:
                var = variable_name(provider, name, key)
                creds[key] = f"${{{var}}}"
                item.variables.append(var)
        body["credentials"] = creds
    else:
        item.notes.append("the platform does not say which credentials it takes: add them under credentials "
                          "(as ${VARS}) before changing this connector")
    if live.name is not None and live.name != name:
        # the platform's name is not a valid manifest name (or is taken): keep it as it is live
        body["lifecycle"] = {"ignore_changes": ["name"]}
        item.notes.append(f"named {json.dumps(live.name, ensure_ascii=False)} on the platform; the manifest "
                          "name differs, so the live name is left alone")
    return item


def render(provider: str, provider_type: str, items: list[Imported], *, schema_ref: str | None,
           when: str) -> str:
    items = sorted(items, key=lambda i: i.name)
    lines = []
    if schema_ref:
        lines.append(f"# yaml-language-server: $schema={schema_ref}")
    else:  # no schema the repository knows: say how to get one rather than point into an install
        lines += ["# Editor completion: `reconcile schema > manifest.schema.json` beside the manifests, then start",
                  "# this file with: # yaml-language-server: $schema=manifest.schema.json"]
    variables = [v for item in items for v in item.variables]
    lines += [
        f"# Written by `reconcile import --provider {provider}` on {when}.",
        f"# These connectors existed on {provider} ({provider_type}) before any manifest named them;",
        "# they are adopted into the state, so the reconciler manages them now. Review and commit this file.",
    ]
    if variables:
        lines.append("# Platforms never reveal credentials; set these variables (from the CI's secret store):")
        lines += [f"#   {v}" for v in variables]
    lines += ["version: 1", "", "connectors:"]
    for item in items:
        lines.append(f"  # imported from live id {item.live.id}")
        lines += [f"  # {note}" for note in item.notes]
        text = yaml.safe_dump({item.name: item.body}, sort_keys=False, allow_unicode=True, default_flow_style=False,
                              width=100)
        lines += ["  " + line if line else line for line in text.rstrip("\n").split("\n")]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
