"""Plans for people and machines: text (Terraform-like), json (versioned), markdown (PR comment)."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from json.encoder import encode_basestring
from typing import Any

import click

from .. import redact
from ..textsafe import escape, fence_for, html_text
from .model import SENSITIVE, SYMBOLS, Action, ActionKind, Plan

GITHUB_COMMENT_LIMIT = 65_000

_HEADLINE = {
    ActionKind.CREATE: "will be created",
    ActionKind.UPDATE: "will be updated in place",
    ActionKind.REPLACE: "must be replaced",
    ActionKind.DELETE: "will be destroyed",
    ActionKind.NOOP: "will be adopted",
}
_COLOUR = {"+": "green", "~": "yellow", "-": "red", "-/+": "magenta", "!": "yellow"}


# one encoder for every value shown (json.dumps with options builds a new one per call: six per
# connector of a plan)
_dump = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _value(v: Any) -> str:
    if v.__class__ is str:  # most values: what _dump writes for a string, without the encoder's method call
        return SENSITIVE if v == SENSITIVE else encode_basestring(redact.mask_env(v))
    if v == SENSITIVE:
        return SENSITIVE
    return _dump(redact.mask_env(v))


def plan_document(plan: Plan) -> dict[str, Any]:
    """``plan.to_json()`` with values read from non-public variables masked (what is shown and saved)."""
    doc = plan.to_json()
    for action in doc.get("actions", []):
        for key in ("source", "target"):
            action[key] = redact.mask_env(action.get(key))
        for change in action.get("changes", []):
            if not change.get("sensitive"):
                change["before"] = redact.mask_env(change.get("before"))
                change["after"] = redact.mask_env(change.get("after"))
    return doc


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    """Append (dotted path, leaf value) for VALUE to OUT."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, value))


def _change_lines(action: Action) -> list[tuple[str, str, str]]:
    """(symbol, path, text) for each changed field of an action."""
    rows: list[tuple[str, str, str]] = []
    if action.kind is ActionKind.CREATE:
        for ch in action.changes:
            after = ch.after
            if isinstance(after, dict) and after:
                leaves: list[tuple[str, Any]] = []
                _flatten(ch.path, after, leaves)
                rows += [("+", path, SENSITIVE if ch.sensitive else _value(v)) for path, v in leaves]
            else:  # most fields: one line, no walk
                rows.append(("+", ch.path, SENSITIVE if ch.sensitive else _value(after)))
        return rows
    for ch in action.changes:
        in_words = bool(ch.note) and ch.top in ("schedule", "syncs") and (
            isinstance(ch.before, dict) or isinstance(ch.after, dict))
        if ch.sensitive:
            text = f"{SENSITIVE} -> {SENSITIVE}" if ch.before is not None else SENSITIVE
        elif in_words:  # a whole schedule object: its words, never a raw {"every": 3600}
            text = str(ch.note)
        elif ch.before is None:
            text = _value(ch.after)
        elif ch.reset:
            text = f"{_value(ch.before)} -> (platform default)"
        elif ch.after is None:
            text = f"{_value(ch.before)} -> null"
        else:
            text = f"{_value(ch.before)} -> {_value(ch.after)}"
        note = []
        if ch.note and not in_words:
            note.append(f"({ch.note})")
        if ch.forces_replace:
            note.append("# forces replacement")
        symbol = "+" if ch.before is None and not ch.sensitive else "-" if ch.after is None else "~"
        rows.append((symbol, ch.path, text + ("   " + " ".join(note) if note else "")))
    return rows


def _same(text: str) -> str:
    return text


def render_text(plan: Plan, *, colour: bool = False, detailed: bool = True) -> str:
    # names, scope keys and values are untrusted: escaped before styling, so only our colours remain.
    # Plain text is escaped once, whole, at the end: escaping maps each character on its own and
    # keeps the newlines the lines are joined with, so it is the same text as escaping line by line
    # (8,000 calls for 1,000 creates)
    def paint(text: str, symbol: str) -> str:
        return click.style(escape(text), fg=_COLOUR.get(symbol)) if colour else text

    def bold(text: str) -> str:
        return click.style(escape(text), bold=True) if colour else text

    esc = escape if colour else _same

    lines: list[str] = []
    s = plan.summary()
    total = len([a for a in plan.actions if a.kind is not ActionKind.DELETE])
    lines.append(f"reconcile plan: {len(plan.providers)} provider{'s' if len(plan.providers) != 1 else ''}, "
                 f"{total} connector{'s' if total != 1 else ''} ({s['unchanged']} unchanged)")
    for old, new in plan.moved:
        lines += ["", esc(f"  # {old} has moved to {new} (the state entry is renamed; the live object is kept, not recreated)")]
    for action in plan.actions:
        if not action.changes_something:
            continue
        kind = action.kind
        symbol = SYMBOLS[kind] if kind is not ActionKind.NOOP else "~"
        headline = _HEADLINE[kind]
        if action.adopt and kind is ActionKind.UPDATE:
            headline = "will be adopted and updated in place"
        reason = f" ({action.reason})" if action.reason and kind is not ActionKind.CREATE else ""
        lines += ["", bold(f"  # {action.address} {headline}{reason}")]
        rows = _change_lines(action) if detailed and kind is not ActionKind.DELETE else None
        if not rows:
            lines.append(paint(f"{symbol:>3} connector {_value(action.name)} {{ id = {_value(action.live_id)} }}", symbol))
            continue
        lines.append(paint(f"{symbol:>3} connector {_value(action.name)} {{", symbol))
        credentials_line = kind is not ActionKind.CREATE and action.has_credentials \
            and not any(c.path == "credentials" for c in action.changes)
        width = max([len(p) for _, p, _ in rows] + ([len("credentials")] if credentials_line else []))
        # ljust: what {path:<{width}} gives a string, without parsing a format spec per line
        if colour:
            lines += [paint(f"      {sym} {path.ljust(width)} = {text}", sym) for sym, path, text in rows]
        else:
            lines += [f"      {sym} {path.ljust(width)} = {text}" for sym, path, text in rows]
        if credentials_line:
            lines.append(f"        {'credentials':<{width}} = {SENSITIVE}")
        lines.append("    }")
    for name in plan.forgotten:
        lines += ["", esc(f"  # {name} is gone from the platform and from the manifests: it leaves the state")]
    by_provider: dict[str, list[str]] = defaultdict(list)
    for u in plan.unmanaged:
        by_provider[u.provider].append(u.label + (" [marked managed-by connector-reconciler: another state?]" if u.marked else ""))
    for provider, labels in sorted(by_provider.items()):
        n = len(labels)
        shown = ", ".join(_value(x) for x in labels[:10]) + (f", ... ({n - 10} more)" if n > 10 else "")
        lines += ["", paint(f"  ! {n} unmanaged connector{'s' if n != 1 else ''} on {provider} "
                            f"(not in any manifest, not owned): {shown}", "!")]
    for warning in plan.warnings:
        lines += ["", paint(f"  ! warning: {warning}", "!")]
    lines.append("")
    lines.append(bold(summary_line(plan)))
    text = "\n".join(lines)
    return redact.scrub(text if colour else escape(text))


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. Live connectors match the manifests."
    s = plan.summary()
    text = f"Plan: {s['add']} to add, {s['change']} to change, {s['replace']} to replace, {s['destroy']} to destroy"
    if s["adopt"]:
        text += f", {s['adopt']} to adopt"
    if plan.moved:
        text += f", {len(plan.moved)} moved"
    return text + "."


def render_json(plan: Plan) -> str:
    return redact.scrub(json.dumps(plan_document(plan), indent=2, sort_keys=False, default=str)) + "\n"


def render_markdown(plan: Plan, *, limit: int = GITHUB_COMMENT_LIMIT, full_plan_url: str | None = None) -> str:
    """A pull-request comment: a summary table, then one collapsible section per provider."""
    head = ["### reconcile plan", "", summary_line(plan), "",
            "| provider | type | add | change | replace | destroy | adopt | unchanged | unmanaged |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    sections = []
    for provider, ptype in sorted(plan.providers.items()):
        acts = [a for a in plan.actions if a.provider == provider]
        count = lambda k: sum(1 for a in acts if a.kind is k)  # noqa: E731
        unchanged = sum(1 for a in acts if a.kind is ActionKind.NOOP and not a.adopt)
        unmanaged = sum(1 for u in plan.unmanaged if u.provider == provider)
        head.append(f"| {html_text(provider)} | {html_text(ptype)} | {count(ActionKind.CREATE)} | {count(ActionKind.UPDATE)} | "
                    f"{count(ActionKind.REPLACE)} | {count(ActionKind.DELETE)} | {sum(1 for a in acts if a.adopt)} | "
                    f"{unchanged} | {unmanaged} |")
        sub = Plan(plan.manifest_root, plan.digest, {provider: ptype}, acts,
                   [u for u in plan.unmanaged if u.provider == provider])
        changed = any(a.changes_something for a in acts)
        body = render_text(sub).split("\n")[1:-1]  # drop the headline and summary: the table says them
        text = _diff_markers("\n".join(line for line in body).strip("\n") or "No changes.")
        # a scope key or value may hold ``` or </details>: a longer fence keeps it inside the block
        fence = fence_for(text)
        sections.append(f"<details{' open' if changed else ''}><summary><b>{html_text(provider)}</b> "
                        f"({html_text(ptype)}): {'changes' if changed else 'no changes'}</summary>\n\n"
                        f"{fence}diff\n{text}\n{fence}\n</details>")
    if plan.warnings:
        sections.append("\n".join(f"> **warning**: {html_text(w)}" for w in plan.warnings))
    out = "\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n"
    if len(out) > limit:
        where = (f"[the full plan]({full_plan_url})" if full_plan_url
                 else "the full plan is in the workflow's plan artifact (`reconcile plan -o plan.json`)")
        note = f"\n\n> **Plan truncated**: it exceeds GitHub's comment size limit; see {where}.\n"
        out = _truncate(out, limit - len(note)) + note
    return redact.scrub(out)


def _truncate(text: str, budget: int) -> str:
    """At most ``budget`` characters of ``text``, cut at a line end, with any open code fence and
    ``<details>`` closed so the comment still renders."""
    fences = re.findall(r"^(`{3,})diff$", text, flags=re.M)
    closing = (max(fences, key=len) if fences else "```") + "\n</details>"
    cut = text[: max(0, budget - len(closing) - 1)]
    cut = cut[: cut.rfind("\n") + 1]  # whole lines only: never half a fence or tag
    tail = ""
    opened = None
    for line in cut.split("\n"):  # a fence opens with ```diff and closes with the same run alone
        if opened is None and re.fullmatch(r"`{3,}diff", line):
            opened = line[:-4]
        elif opened is not None and line == opened:
            opened = None
    if opened is not None:
        tail += opened + "\n"
    if cut.count("<details") > cut.count("</details>"):
        tail += "</details>"
    return cut + tail


def _diff_markers(text: str) -> str:
    """Move each line's +/-/~/! to column 0, so GitHub's diff highlighting colours the line, and
    blank it where it was (one marker per line, never ``~ ~``); a replace's ``-/+`` becomes ``!``."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        at = len(line) - len(stripped)
        if stripped.startswith("-/+"):
            out.append("!" + line[1:at] + "   " + stripped[3:] if at else "!  " + stripped[3:])
        elif stripped[:1] in "+-~!" and stripped and at:
            out.append(stripped[0] + line[1:at] + " " + stripped[1:])
        else:
            out.append(line)
    return "\n".join(out)


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
