"""Refuse a broken state before anything acts on it: every backend reads through these checks.

A state that loads "mostly" is worse than one that does not load: a dropped entry makes the next
plan create a twin, two entries on one live id make it rename the object back and forth forever.
So every defect is an error saying where it is (entry, journal line, row) and how to repair it.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import ReconcileError
from .model import STATE_VERSION, State, StateEntry

_OPTIONAL_TEXT = ("key", "source", "target", "version", "fingerprint", "applied_at")


class StateCorrupt(ReconcileError):
    """The state cannot be trusted; its message names the defect and the repair."""


def corrupt(where: str, what: str, repair: str) -> StateCorrupt:
    return StateCorrupt(f"state {where}: {what}; {repair}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), type(value).__name__)


def entry_problem(data: Any, *, key: str | None = None) -> str | None:
    """What is wrong with one serialised entry (None: nothing). ``key`` is the name it is filed under."""
    if not isinstance(data, dict):
        return f"is {_kind(data)}, not an object"
    for name in ("name", "provider", "type", "id"):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            return f"lacks {name!r}" if value is None else f"has {name!r} {_kind(value)}, not a non-empty string"
    for name in _OPTIONAL_TEXT:
        if data.get(name) is not None and not isinstance(data[name], str):
            return f"has {name!r} {_kind(data[name])}, not a string"
    if data.get("fields") is not None and not isinstance(data["fields"], dict):
        return f"has 'fields' {_kind(data['fields'])}, not an object"
    if not isinstance(data.get("prevent_destroy", False), bool):
        return "has 'prevent_destroy' that is not true or false"
    if key is not None and data["name"] != key:
        return f"is filed under {key!r} but names itself {data['name']!r}"
    return None


def document(data: Any, where: str, repair_for: Callable[[str | None], str]) -> State:
    """A whole state document (``state.json``), checked. ``repair_for(entry name or None)`` says how
    to repair it."""
    repair = repair_for(None)
    if not isinstance(data, dict):
        raise corrupt(where, f"the top level is {_kind(data)}, not an object with 'connectors'", repair)
    version = data.get("version", STATE_VERSION)
    if version != STATE_VERSION or isinstance(version, bool):
        if isinstance(version, int) and not isinstance(version, bool) and version > STATE_VERSION:
            raise corrupt(where, f"it is state version {version}, newer than this reconcile understands "
                                 f"({STATE_VERSION})", "upgrade reconcile, or " + repair)
        raise corrupt(where, f"'version' is {version!r}; this reconcile reads version {STATE_VERSION}", repair)
    connectors = data.get("connectors", {})
    if not isinstance(connectors, dict):
        raise corrupt(where, f"'connectors' is {_kind(connectors)}, not an object of entries by name", repair)
    serial = data.get("serial", 0)
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise corrupt(where, f"'serial' is {serial!r}, not a count", repair)
    lineage = data.get("lineage")
    if lineage is not None and not isinstance(lineage, str):
        raise corrupt(where, f"'lineage' is {_kind(lineage)}, not a string", repair)
    for name, entry in connectors.items():
        problem = entry_problem(entry, key=name)
        if problem:
            raise corrupt(where, f"entry {name!r} {problem}", repair_for(str(name)))
    return State.from_json(data)


def journal_record(record: Any) -> str | None:
    """What is wrong with one journal record (None: nothing)."""
    if not isinstance(record, dict):
        return f"is {_kind(record)}, not a record"
    op = record.get("op")
    if op == "put":
        problem = entry_problem(record.get("entry"))
        return f"(a put) has an entry that {problem}" if problem else None
    if op == "puts":
        entries = record.get("entries")
        if not isinstance(entries, list) or not entries:
            return "(a put of several) lacks its list of entries"
        for doc in entries:
            problem = entry_problem(doc)
            if problem:
                return f"(a put of several) has an entry that {problem}"
        return None
    if op == "mv":
        if not isinstance(record.get("from"), str) or not record["from"]:
            return "(a rename) lacks the name it renames from"
        problem = entry_problem(record.get("entry"))
        return f"(a rename) has an entry that {problem}" if problem else None
    if op == "rm":
        return None if isinstance(record.get("name"), str) and record["name"] else "(an rm) lacks the name it removes"
    return "lacks 'op'" if op is None else f"has the unknown op {op!r}"


def unique_ids(state: State, where: str, *, how_to_drop: str) -> None:
    """Two entries on one live object: refuse, or the plan flip-flops a rename between them forever."""
    seen: dict[tuple[str, str], StateEntry] = {}
    for entry in sorted(state.entries.values(), key=lambda e: e.name):
        first = seen.setdefault((entry.provider, entry.id), entry)
        if first is not entry:
            raise corrupt(where, f"entries {first.name!r} and {entry.name!r} both own the live object {entry.id} on "
                                 f"provider {entry.provider!r}",
                          f"keep the one the manifests name and remove the other: {how_to_drop.format(name=entry.name)}")
