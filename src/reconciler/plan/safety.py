"""Plan-time checks that keep an apply from losing or fighting over connectors (issue 13).

- Every target a create or replace needs must exist: otherwise a replace deletes the original and
  then fails its create. A target that already holds one of the connectors is proven; the rest are
  asked of the adapter (``Provider.missing_targets``: at most one listing call per provider).
- A live object carrying a declared connector's identity that this state does not own means a second
  state (another repository, a person) manages a connector of that name on the same platform: the
  plan says so with both ids instead of listing it as merely unmanaged.
"""
from __future__ import annotations

from typing import Iterable

from ..errors import ReconcileError
from ..model import LiveConnector
from .model import Action, ActionKind


def check_targets(provider, name: str, matches, actions: Iterable[Action]) -> None:  # type: ignore[no-untyped-def]
    """Raise naming each connector whose target (collection, workspace, integration, ...) is missing."""
    kinds = {a.name: a.kind for a in actions}
    needed: dict[str, list] = {}
    proven: set[str] = set()
    for match in matches:
        c, live = match.connector, match.live
        containers = provider.containers(c)
        # a replace keeping target and source (a member change, --replace) stays where its live object is
        stays = live is not None and live.target == c.target and live.source == c.source
        if kinds.get(c.name) is ActionKind.CREATE or (kinds.get(c.name) is ActionKind.REPLACE and not stays):
            for container in containers:
                needed.setdefault(container, []).append(match.connector)
        else:  # its live object sits in these containers, so they exist
            proven |= containers
    ask = sorted(set(needed) - proven)
    if not ask:
        return
    missing = provider.missing_targets(ask)
    if not missing:
        return
    lines = []
    for container in sorted(missing):
        for connector in needed.get(container, ()):
            where = f"{connector.location}: " if connector.location else ""
            lines.append(f"{where}connector {connector.name!r} needs {container!r}, which does not exist on provider {name!r} "
                         f"({provider.type}) or is not visible to its API key")
    raise ReconcileError("\n".join(lines) + "\nCreate it on the platform first, or correct the connector's target "
                         "(or source); nothing was changed")


def conflicts(name: str, matches, unmanaged: list[LiveConnector], identity,  # type: ignore[no-untyped-def]
              lineage: str | None = None) -> list[str]:
    """Warnings for live objects that share a declared connector's identity but are not the one this
    state owns (or adopts). ``lineage``: this state's, which a marker naming it is no conflict with."""
    by_key: dict[str, list[LiveConnector]] = {}
    for obj in unmanaged:
        if obj.key:
            by_key.setdefault(obj.key, []).append(obj)
    out = []
    for match in matches:
        key = identity(match.connector)
        others = by_key.get(key, []) if key else []
        if not others:
            continue
        ids = ", ".join(o.id for o in others)
        ours = f"this state's is {match.live.id}" if match.live is not None else "this state owns none yet"
        out.append(f"conflict: {name}.{match.connector.name}: live connector(s) {ids} carry the same identity "
                   f"{key!r} but are not the one this state manages ({ours}); another state or a person manages a "
                   "connector of that name on this platform. Rename one of them, or `reconcile import` it here and "
                   "remove it from the other")
    for match in matches:
        live = match.live
        if match.adopt and live is not None and live.marked_by_another(lineage) and match.renamed_from is None:
            out.append(f"conflict: {name}.{match.connector.name}: adopting live connector {live.id}, which carries "
                       "the reconciler's ownership marker but is in no entry of this state: another state may manage "
                       "it. If so, rename the connector here instead")
    return out
