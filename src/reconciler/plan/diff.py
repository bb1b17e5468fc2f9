"""Field-level differences between a live projection and a desired one (``deepdiff``).

Both sides are the normalised projections the adapter produces, so server-managed fields and
platform defaults are already gone; what remains are real differences. Lists are compared as whole
values (a reviewer reads "channels: [a, b] -> [a, c]" better than index arithmetic).
"""
from __future__ import annotations

from typing import Any, Iterable

from ..schedule_text import describe
from .model import FieldChange

_MISSING = object()


def _get(tree: Any, path: list[Any]) -> Any:
    for part in path:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return None
    return tree


def _ignored(path: str, ignore: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in ignore)


def same(a: Any, b: Any) -> bool:
    """Equal as DeepDiff sees it: same types all the way down (``1`` vs ``1.0`` or ``True`` differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def diff_fields(live: dict[str, Any], desired: dict[str, Any], *, ignore: Iterable[str] = ()) -> list[FieldChange]:
    """Changes that turn ``live`` into ``desired``, one per changed leaf (lists whole)."""
    if same(live, desired):  # the common case at scale; DeepDiff costs ~0.3 ms even for equal inputs
        return []
    from deepdiff import DeepDiff  # imported when first needed: ~0.12 s of every CLI start otherwise

    ignore = tuple(ignore)
    result = DeepDiff(live, desired, view="tree", ignore_order=False, ignore_numeric_type_changes=False)
    paths: dict[str, list[Any]] = {}
    for report in result.values():
        for node in report:
            parts = node.path(output_format="list")
            # roll a list element change up to the list itself
            for i, part in enumerate(parts):
                if isinstance(part, int):
                    parts = parts[:i]
                    break
            paths.setdefault(".".join(str(p) for p in parts), parts)
    changes = []
    for dotted, parts in sorted(paths.items()):
        if not dotted or _ignored(dotted, ignore):
            continue
        before, after = _get(live, parts), _get(desired, parts)
        changes.append(FieldChange(dotted, before, after, note=_note(parts, before, after, live, desired)))
    return changes


def _note(parts: list[Any], before: Any, after: Any, live: dict, desired: dict) -> str | None:
    """Schedules in words: ``(every 6 hours -> at 03:00)``."""
    if not parts or parts[0] not in ("schedule", "syncs"):
        return None
    depth = 1 if parts[0] == "schedule" else 2
    if len(parts) < depth:
        return None
    old, new = _get(live, parts[:depth]), _get(desired, parts[:depth])
    if not isinstance(old, (dict, type(None))) or not isinstance(new, (dict, type(None))):
        return None
    # a sync the manifest does not name (or no longer names) runs at the integration's default
    words = (lambda s: "platform default" if s is None else describe(s)) if depth == 2 else describe
    a, b = words(old), words(new)
    return f"{a} -> {b}" if a != b else None
