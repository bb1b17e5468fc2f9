"""The plan: a value that can be saved, rendered, reviewed and applied later.

The JSON form (``to_json``) is versioned (``format_version``) and described by
``schemas/plan.schema.json``; it never holds a secret: credentials appear as ``"(sensitive)"`` and
are bound to the plan only through keyed fingerprints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

FORMAT_VERSION = 1
SENSITIVE = "(sensitive)"


def _mask(value: Any) -> Any:
    return None if value is None else SENSITIVE


class ActionKind(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    NOOP = "no-op"


SYMBOLS = {ActionKind.CREATE: "+", ActionKind.UPDATE: "~", ActionKind.REPLACE: "-/+",
           ActionKind.DELETE: "-", ActionKind.NOOP: " "}


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # dotted: scope.branch, schedule.cron, credentials
    before: Any = None
    after: Any = None
    sensitive: bool = False
    forces_replace: bool = False
    note: str | None = None  # human reading, e.g. cron in words
    # the manifests no longer set it (or declare it unset): it returns to the platform's default
    reset: bool = False

    @property
    def top(self) -> str:
        return self.path.split(".", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "before": _mask(self.before) if self.sensitive else self.before,
            "after": _mask(self.after) if self.sensitive else self.after,
            "sensitive": self.sensitive,
            "forces_replace": self.forces_replace,
            **({"note": self.note} if self.note else {}),
            **({"reset": True} if self.reset else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "FieldChange":
        return cls(d["path"], d.get("before"), d.get("after"), d.get("sensitive", False),
                   d.get("forces_replace", False), d.get("note"), d.get("reset", False))


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    name: str
    provider: str
    provider_type: str
    reason: str = ""
    changes: tuple[FieldChange, ...] = ()
    live_id: str | None = None
    live_token: str | None = None  # what the live object looked like when planned (staleness check)
    adopt: bool = False  # exists on the platform but not in the state yet: apply records ownership
    source: str | None = None
    target: str | None = None
    sync_on_apply: bool = False
    has_credentials: bool = False

    @property
    def address(self) -> str:
        return f"{self.provider}.{self.name}"

    @property
    def changes_something(self) -> bool:
        return self.kind is not ActionKind.NOOP or self.adopt

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.kind.value,
            "address": self.address,
            "name": self.name,
            "provider": self.provider,
            "provider_type": self.provider_type,
            "source": self.source,
            "target": self.target,
            "reason": self.reason,
            "adopt": self.adopt,
            "sync_on_apply": self.sync_on_apply,
            "has_credentials": self.has_credentials,
            "changes": [c.to_json() for c in self.changes],
            "live": {"id": self.live_id, "token": self.live_token},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Action":
        return cls(ActionKind(d["action"]), d["name"], d["provider"], d["provider_type"], d.get("reason", ""),
                   tuple(FieldChange.from_json(c) for c in d.get("changes", [])), d.get("live", {}).get("id"),
                   d.get("live", {}).get("token"), d.get("adopt", False), d.get("source"), d.get("target"),
                   d.get("sync_on_apply", False), d.get("has_credentials", False))


@dataclass(frozen=True, slots=True)
class Unmanaged:
    provider: str
    id: str
    label: str  # the platform's name, or its natural key
    marked: bool = False  # our ownership marker names another state (or none): another state may manage it

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "id": self.id, "label": self.label, "marked": self.marked}


@dataclass(slots=True)
class Plan:
    manifest_root: str
    # the manifests' digest (what binds a saved plan to them), or how to work it out: only a plan
    # that is saved or printed as JSON needs it (:attr:`manifest_digest`), and at 100,000 connectors
    # its encoding was 0.45 s of a plan
    digest: str | Callable[[], str]
    providers: dict[str, str]  # name -> type
    actions: list[Action]
    unmanaged: list[Unmanaged] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # state entries whose object is gone and not desired
    moved: list[tuple[str, str]] = field(default_factory=list)  # state entries renamed (old, new)
    warnings: list[str] = field(default_factory=list)
    created_at: str = ""
    tool_version: str = ""

    @property
    def manifest_digest(self) -> str:
        if callable(self.digest):
            self.digest = self.digest()
        return self.digest

    def count(self, kind: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind is kind)

    @property
    def adopted(self) -> int:
        return sum(1 for a in self.actions if a.adopt)

    @property
    def has_changes(self) -> bool:
        return any(a.changes_something for a in self.actions) or bool(self.forgotten) or bool(self.moved)

    @property
    def deletes(self) -> int:
        """Objects the apply would delete (a replace deletes too)."""
        return self.count(ActionKind.DELETE) + self.count(ActionKind.REPLACE)

    def summary(self) -> dict[str, int]:
        return {
            "add": self.count(ActionKind.CREATE),
            "change": self.count(ActionKind.UPDATE),
            "replace": self.count(ActionKind.REPLACE),
            "destroy": self.count(ActionKind.DELETE),
            "adopt": self.adopted,
            "unchanged": sum(1 for a in self.actions if a.kind is ActionKind.NOOP and not a.adopt),
            "unmanaged": len(self.unmanaged),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "manifest": {"root": self.manifest_root, "digest": self.manifest_digest},
            "providers": self.providers,
            "summary": self.summary(),
            "changes_present": self.has_changes,
            "actions": [a.to_json() for a in self.actions],
            "unmanaged": [u.to_json() for u in self.unmanaged],
            "forgotten": list(self.forgotten),
            "moved": [{"from": a, "to": b} for a, b in self.moved],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Plan":
        return cls(
            manifest_root=d["manifest"]["root"],
            digest=d["manifest"]["digest"],
            providers=dict(d.get("providers", {})),
            actions=[Action.from_json(a) for a in d.get("actions", [])],
            unmanaged=[Unmanaged(**u) for u in d.get("unmanaged", [])],
            forgotten=list(d.get("forgotten", [])),
            moved=[(m["from"], m["to"]) for m in d.get("moved", [])],
            warnings=list(d.get("warnings", [])),
            created_at=d.get("created_at", ""),
            tool_version=d.get("tool_version", ""),
        )
