"""Field ownership: which projection paths the manifests own (kubectl's last-applied, three ways).

A *path* is a projection key (``description``, ``schedule``), or, inside the keyed fields below,
one of their first-level keys (``scope.branch``, ``syncs.issues``): a platform fills and keeps
such keys one by one (server defaults, values set in its UI), so they are owned one by one.
Everything else is owned as a whole value (a schedule is one choice, not a bag of keys).

Three sets decide the diff, per path:
- declared now (the desired projection)          -> compared with live;
- last applied, no longer declared               -> returned to the platform's default (a reset);
- live, neither declared nor last applied        -> the platform's: never a change, never drift.

A declared path whose value is ``None`` says "declared, not set": it equals an absent live value.
Pure: no I/O, no platform names.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Iterable, Mapping

from .diff import _ignored, _note, diff_fields, same
from .model import FieldChange

# projection fields owned key by key (see the module docstring)
KEYED = frozenset({"scope", "syncs"})

Path = tuple[str, ...]
_MISSING: Any = object()


def dotted(path: Path) -> str:
    return ".".join(path)


def owned_paths(projection: Mapping[str, Any] | None) -> set[Path]:
    out: set[Path] = set()
    for key, value in (projection or {}).items():
        if key in KEYED and isinstance(value, dict):
            out.update((key, str(k)) for k in value)
        else:
            out.add((key,))
    return out


def value_at(tree: Mapping[str, Any] | None, path: Path) -> Any:
    node: Any = tree or {}
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def restrict(tree: Mapping[str, Any], paths: Iterable[Path], *, none_where: Mapping[str, Any] | None = None
             ) -> dict[str, Any]:
    """The part of ``tree`` at ``paths``. A path missing from ``tree`` is left out, or set to None
    where ``none_where`` holds None there (so "declared, not set" meets "absent" as equal)."""
    out: dict[str, Any] = {}
    for path in sorted(paths):
        value = value_at(tree, path)
        if value is _MISSING:
            if none_where is None or value_at(none_where, path) is not None:
                continue
            value = None
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _covers(path: Path, others: set[Path]) -> bool:
    """Whether ``path`` overlaps a path in ``others`` (one is a prefix of the other)."""
    return any(o[:len(path)] == path or path[:len(o)] == o for o in others)


def platform_owned(live: Mapping[str, Any], *owners: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted path -> live value for what ``live`` holds outside the paths ``owners`` own (the
    projections declared and last applied): ``LiveConnector.unowned``. Plain loops over the dicts:
    it runs for every connector of every plan."""
    out: dict[str, Any] = {}
    for key, value in live.items():
        holders = []
        whole = False
        for owner in owners:
            if key in owner:
                held = owner[key]
                if key in KEYED and isinstance(held, dict):
                    holders.append(held)
                else:
                    whole = True
                    break
        if whole:
            continue
        if key in KEYED and isinstance(value, dict):
            for k, v in value.items():
                for held in holders:
                    if k in held:
                        break
                else:
                    out[f"{key}.{k}"] = v
        elif not holders:
            out[key] = value
    return out


def _equal_or_unset(live: Mapping[str, Any], key: Any, want: Any) -> bool:
    if key not in live:
        return want is None
    got = live[key]
    # the very string (one the state and the manifests share, or interned) is equal without a look;
    # only strings: a NaN, alone or inside the very same list, equals nothing
    return (got is want and got.__class__ is str) or same(got, want)


def _unchanged(live: Mapping[str, Any], desired: Mapping[str, Any], applied: Mapping[str, Any]) -> bool:
    """Whether live matches every declared path and nothing applied was dropped (then no change).
    Asked of every paired connector: loops written out, no generator per sub-object."""
    for key, want in desired.items():
        if key in KEYED and isinstance(want, dict):
            if not want:
                continue  # nothing owned inside
            got = live.get(key)
            if not isinstance(got, dict):
                return False
            for k, v in want.items():
                if not _equal_or_unset(got, k, v):
                    return False
        elif not _equal_or_unset(live, key, want):
            return False
    if applied is desired:
        return True
    for key, value in applied.items():
        if key not in desired:
            return False
        if key in KEYED and isinstance(value, dict):
            declared = desired[key]
            if not isinstance(declared, dict) or any(k not in declared for k in value):
                return False
    return True


def three_way(live: Mapping[str, Any], desired: Mapping[str, Any], applied: Mapping[str, Any], *,
              ignore: Iterable[str] = (), defaults: Mapping[str, Any] | None = None) -> list[FieldChange]:
    """The changes that make ``live`` match what the manifests own, sorted by path.

    ``applied`` is the projection last applied (the state's record); ``defaults`` maps dotted paths
    to the platform's known default values, so a reset of a value already at its default is no change.
    """
    if _unchanged(live, desired, applied):  # the common case at scale: no sets, no copies
        return []
    ignore = tuple(ignore)
    declared = owned_paths(desired)
    changes = diff_fields(restrict(live, declared, none_where=desired), restrict(desired, declared), ignore=ignore)
    # a declared "not set" that live has set is a return to the platform's default as well
    changes = [replace(c, reset=True) if c.after is None and c.before is not None
               and value_at(desired, tuple(c.path.split(".", 1))) is None else c for c in changes]
    for path in sorted(owned_paths(applied) - declared):
        name = dotted(path)
        if _covers(path, declared) or _ignored(name, ignore):
            continue
        before = value_at(live, path)
        if before is _MISSING or before is None:
            continue  # already back at the platform's default (absent)
        if defaults and name in defaults and same(before, defaults[name]):
            continue
        note = _note(list(path), before, None, dict(live), {}) if path[0] == "syncs" else None
        changes.append(FieldChange(name, before, None, note=note, reset=True))
    return sorted(changes, key=lambda c: c.path)
