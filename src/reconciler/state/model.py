"""What the reconciler owns: one entry per connector it created or adopted. Nothing secret."""
from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass(slots=True)
class StateEntry:
    name: str
    provider: str  # the providers: entry name
    type: str  # the provider type, so `state show` needs no manifest
    id: str  # live id on the platform
    key: str = ""  # identity key (name, natural key); "" when the platform has none
    source: str | None = None
    target: str | None = None
    version: str | None = None  # the platform's modification marker when last seen
    fields: dict[str, Any] | None = None  # the live projection when last seen (lets a plan skip a GET)
    # the desired projection last applied: what the manifests own (docs/state.md, "Field ownership");
    # None in a state written before field ownership: the declared keys are taken as owned
    last_applied: dict[str, Any] | None = None
    fingerprint: str | None = None  # keyed credential fingerprint (see fingerprint.py)
    prevent_destroy: bool = False  # remembered so a connector removed from git is still protected
    applied_at: str | None = None
    # a create in flight on a platform that takes idempotency keys: the nonce its key is made from,
    # journaled before the call (``id`` is then "pending-create:<nonce>" unless the entry had one). A retry of that attempt, even after a crash,
    # reuses it; a successful create writes an entry without it, so the next create gets a new key
    create_nonce: str | None = None

    def to_json(self) -> dict[str, Any]:
        # shallow: the result is only serialised, and asdict's deep copy of every projection was
        # half the time of writing a state of 1,000 connectors
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StateEntry":
        """The entry DATA describes; DATA is taken over (its strings are interned in place)."""
        known = data if data.keys() <= _FIELDS else {f: data[f] for f in data.keys() & _FIELDS}
        # a state of 100,000 entries repeats a few providers, types, sources, targets and branches:
        # JSON gives each occurrence its own string, so share them (and the key that is the name)
        for f in _REPEATED:
            value = known.get(f)
            if value.__class__ is str:
                known[f] = _intern(value)
        if known.get("key") == known.get("name"):
            known["key"] = known.get("name")
        for f in ("fields", "last_applied"):
            projection = known.get(f)
            if projection.__class__ is dict:
                _intern_short(projection)
        return cls(**known)


_FIELDS = frozenset(StateEntry.__dataclass_fields__)
_REPEATED = ("provider", "type", "source", "target", "applied_at")  # one apply writes many entries in a second
_intern = sys.intern


def _intern_short(projection: dict[str, Any]) -> None:
    """Intern PROJECTION's short strings in place (fresh from JSON, it is ours), one level into
    scope too."""
    for k, v in projection.items():
        if v.__class__ is str:
            if len(v) <= 24:
                projection[k] = _intern(v)
        elif v.__class__ is dict:
            for k2, v2 in v.items():
                if v2.__class__ is str and len(v2) <= 24:
                    v[k2] = _intern(v2)


@dataclass(slots=True)
class State:
    entries: dict[str, StateEntry] = field(default_factory=dict)
    lineage: str = field(default_factory=lambda: str(uuid.uuid4()))
    serial: int = 0

    def for_provider(self, provider: str) -> list[StateEntry]:
        return [e for e in self.entries.values() if e.provider == provider]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "lineage": self.lineage,
            "serial": self.serial,
            "connectors": {name: e.to_json() for name, e in sorted(self.entries.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "State":
        """The state DATA (a decoded state.json) describes; DATA is taken over and emptied."""
        connectors = data.get("connectors", {})
        entries = {}
        for name in list(connectors):  # each JSON object is let go once its entry is made: a lower peak
            entries[name] = StateEntry.from_json(connectors.pop(name))
        return cls(
            entries=entries,
            lineage=data.get("lineage") or str(uuid.uuid4()),
            serial=int(data.get("serial", 0)),
        )
