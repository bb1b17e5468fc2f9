"""Terraform's escape hatches on a full plan: ``--target``, ``--replace`` and ``--destroy``.

The engine always plans everything (it must list every live object to pair them); a
:class:`Selection` then narrows or rewrites that plan. Applied to the same inputs it gives the same
plan, so a saved plan that records its selection is checked against a re-plan made the same way.
Pure: no I/O, no platform branch.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from typing import Any, Iterable

from ..errors import ReconcileError
from .model import Action, ActionKind, Plan

PARTIAL_WARNING = (
    "resource targeting is in effect: this plan covers only the connectors matching --target ({}), so "
    "the rest of the manifests are not reconciled and the result may be incomplete. Use it for exceptional "
    "situations (recovering from a mistake, working around a platform error), not routinely; a plan without "
    "--target shows everything that is still pending."
)


@dataclass(frozen=True, slots=True)
class Selection:
    """What to plan: only ``targets`` (names, ``provider.name`` addresses, globs), ``replace`` these
    connectors although they look fine, or ``destroy`` everything the state owns."""

    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False

    @property
    def empty(self) -> bool:
        return not (self.targets or self.replace or self.destroy)

    def to_json(self) -> dict[str, Any]:
        return {"target": list(self.targets), "replace": list(self.replace), "destroy": self.destroy}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> "Selection":
        d = d or {}
        return cls(tuple(d.get("target") or ()), tuple(d.get("replace") or ()), bool(d.get("destroy")))


def matches(pattern: str, name: str, address: str) -> bool:
    """A pattern names a connector (``slack-*``) or an address (``nango.slack-*``, ``nango.*``)."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(address, pattern)


def select(plan: Plan, selection: Selection, *, owned: Iterable[str], protected: Iterable[str]) -> Plan:
    """``plan`` narrowed/rewritten by ``selection``.

    ``owned``: connector names whose live object the state owns (the only ones ``--replace`` and
    ``--destroy`` may delete). ``protected``: names under ``lifecycle.prevent_destroy`` (in git or
    remembered by the state).
    """
    if selection.empty:
        return plan
    owned, protected = set(owned), set(protected)
    if selection.destroy and selection.replace:
        raise ReconcileError("--destroy and --replace cannot be combined: a destroy plan creates nothing")
    out = replace(plan, actions=list(plan.actions), unmanaged=list(plan.unmanaged), forgotten=list(plan.forgotten),
                  moved=list(plan.moved), warnings=list(plan.warnings))
    if selection.targets:  # first: the guards below apply to the targeted connectors only
        _narrow(out, selection.targets)
    if selection.replace:
        out.actions = _force_replace(out.actions, selection.replace, owned, protected,
                                     "among the --target connectors" if selection.targets else "in the manifests")
    if selection.destroy:
        out.actions = _destroy(out.actions, owned, protected)
    return out


def _force_replace(actions: list[Action], names: tuple[str, ...], owned: set[str], protected: set[str],
                   where: str) -> list[Action]:
    by_name = {a.name: a for a in actions if a.kind is not ActionKind.DELETE}
    wanted: set[str] = set()
    for pattern in names:
        hit = {a.name for a in by_name.values() if matches(pattern, a.name, a.address)}
        if not hit:
            raise ReconcileError(f"--replace {pattern}: no connector {where} has that name "
                                 f"(known: {', '.join(sorted(by_name)[:20]) or 'none'})")
        wanted |= hit
    blocked = sorted(n for n in wanted if n in protected)
    if blocked:
        raise ReconcileError(f"--replace: lifecycle.prevent_destroy protects {', '.join(blocked)}; remove "
                             "prevent_destroy from the connector (in git) first if the replacement is intended")
    out = []
    for a in actions:
        if a.name not in wanted or a.kind in (ActionKind.CREATE, ActionKind.REPLACE, ActionKind.DELETE):
            out.append(a)  # a connector that does not exist yet is simply created
            continue
        if a.name not in owned:
            raise ReconcileError(f"--replace {a.address}: the live object is not in the state yet (it would be "
                                 "adopted); apply once without --replace so the state owns it, then replace it")
        out.append(replace(a, kind=ActionKind.REPLACE, adopt=False,
                           reason="replacement requested with --replace" + (f"; {a.reason}" if a.reason else "")))
    return out


def _destroy(actions: list[Action], owned: set[str], protected: set[str]) -> list[Action]:
    out = []
    blocked = []
    for a in actions:
        if a.kind is ActionKind.CREATE or a.live_id is None or (a.kind is not ActionKind.DELETE and a.name not in owned):
            continue  # nothing live, or live but not ours: a destroy leaves it alone
        if a.name in protected:
            blocked.append(a.address)
            continue
        if a.kind is ActionKind.DELETE:
            out.append(a)
        else:
            out.append(Action(ActionKind.DELETE, a.name, a.provider, a.provider_type,
                              reason="destroy requested with --destroy", live_id=a.live_id, live_token=a.live_token,
                              source=a.source, target=a.target))
    if blocked:
        raise ReconcileError("lifecycle.prevent_destroy forbids this destroy plan:\n  " + "\n  ".join(blocked)
                             + "\nRemove prevent_destroy from these connectors (in git) first, or leave them out "
                             "with --target.")
    return out


def _narrow(plan: Plan, patterns: tuple[str, ...]) -> None:
    def hit(name: str, provider: str | None = None) -> bool:
        return any(matches(p, name, f"{provider}.{name}" if provider else name) for p in patterns)

    provider_of = {a.name: a.provider for a in plan.actions}
    unused = [p for p in patterns if not any(matches(p, a.name, a.address) for a in plan.actions)
              and not any(fnmatch.fnmatchcase(n, p) for n in plan.forgotten)]
    if unused:
        known = sorted(a.address for a in plan.actions)
        raise ReconcileError(f"--target {', '.join(unused)}: no connector in the manifests or the state matches "
                             f"(known: {', '.join(known[:20]) or 'none'}{' ...' if len(known) > 20 else ''})")
    plan.actions = [a for a in plan.actions if hit(a.name, a.provider)]
    plan.forgotten = [n for n in plan.forgotten if hit(n)]
    plan.moved = [(old, new) for old, new in plan.moved if hit(new, provider_of.get(new)) or hit(old)]
    plan.unmanaged = []  # unrelated to the targets; a full plan lists them
    plan.warnings.insert(0, PARTIAL_WARNING.format(", ".join(patterns)))
