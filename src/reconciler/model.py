"""The common connector model: plain typed values shared by every stage.

Desired connectors come from manifests (``manifest`` package); live connectors come from
provider adapters (``providers`` package). Everything sensitive is wrapped in :class:`Secret`,
whose ``str``/``repr`` never reveal the value, so no later stage can print one by accident.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from . import redact

@dataclass(frozen=True, slots=True)
class Location:
    """Where a value was written: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Secret:
    """A sensitive string. Printing, formatting or repr-ing it shows ``(sensitive)``.

    ``source`` names where it came from (the environment variable), which is safe to show.
    Every secret registers itself with :mod:`reconciler.redact` so that output paths can scrub
    the raw value (and its encoded forms) even if it leaked through a platform's error message.
    """

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str | None = None) -> None:
        self._value = value
        self.source = source
        redact.register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "(sensitive)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "(sensitive)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # pickling would carry the value across a boundary we do not control
        raise TypeError("Secret values cannot be pickled")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a connector syncs. Exactly one form is set."""

    cron: str | None = None
    every: int | None = None  # seconds
    continuous: bool = False
    cursor_field: str | None = None
    manual: bool = False

    @property
    def form(self) -> str:
        if self.cron is not None:
            return "cron"
        if self.every is not None:
            return "every"
        if self.continuous:
            return "continuous"
        return "manual"

    def as_dict(self) -> dict[str, Any]:
        """The normalised shape compared by the differ (only the set form's keys)."""
        form = self.form
        if form == "cron":
            return {"cron": self.cron}
        if form == "every":
            return {"every": self.every}
        if form == "continuous":
            out: dict[str, Any] = {"continuous": True}
            if self.cursor_field is not None:
                out["cursor_field"] = self.cursor_field
            return out
        return {"manual": True}


@dataclass(frozen=True, slots=True)
class Lifecycle:
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()
    # a replace creates the new object before deleting the old; None: the platform's default
    # (Capabilities.create_before_destroy)
    create_before_destroy: bool | None = None


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One entry of ``providers:``: an account or endpoint on one platform."""

    name: str
    type: str
    url: str
    api_key: Secret | None = None
    allow_insecure_http: bool = False
    location: Location | None = None
    url_location: Location | None = None  # where ``url:`` was written (None: the platform's default)


@dataclass(frozen=True, slots=True)
class Connector:
    """A desired connector, as the manifests declare it (variables resolved).

    ``scope`` holds the platform's own scope/config keys. ``credentials`` maps the platform's
    credential field names to :class:`Secret` values (nested objects are flattened with dots
    only by adapters that need it; the manifest keeps them as written).
    ``member`` is Airstore's member id (empty = shared connection); ``syncs`` holds Nango's
    per-sync schedules.
    """

    name: str
    provider: str
    source: str
    target: str | None = None
    description: str | None = None
    scope: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule | None = None
    syncs: Mapping[str, Schedule] = field(default_factory=dict)
    member: str | None = None
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    sync_on_apply: bool = False
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class MovedEntry:
    """A ``moved: [{from: old, to: new}]`` entry: rename without delete/create."""

    old: str
    new: str
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class StateConfig:
    backend: str = "file"  # file | postgres
    path: str | None = None  # file backend: defaults to <manifest dir>/.reconcile/state.json
    dsn: Secret | None = None  # postgres backend
    name: str | None = None  # postgres backend: which state in the database (default: the manifest dir's name)


@dataclass(frozen=True, slots=True)
class Manifest:
    """All manifest files of one PATH, merged: the desired state."""

    root: str  # the PATH given on the command line (file or directory)
    files: tuple[str, ...]
    providers: Mapping[str, ProviderConfig]
    connectors: Mapping[str, Connector]
    state: StateConfig = field(default_factory=StateConfig)
    moved: tuple[MovedEntry, ...] = ()
    sandbox: bool = False  # loaded for --sandbox (placeholder variables): plan and apply follow it


_NOTHING_UNOWNED: Mapping[str, Any] = MappingProxyType({})  # shared: one empty dict per live object is 6 MB at 100k


@dataclass(slots=True)
class LiveConnector:
    """A connector as a platform reports it, projected onto the common model.

    ``fields`` uses the same normalised shape as :meth:`Provider.desired_fields`, so the differ
    compares like with like. ``complete`` is False when the list endpoint lacks fields the diff
    needs (the engine then reads the detail, unless ``version`` shows nothing moved since the
    state last saw it). ``version`` is the platform's modification marker (e.g. ``modified_at``).
    """

    id: str
    key: str
    name: str | None
    source: str
    target: str | None
    fields: dict[str, Any]
    complete: bool = True
    version: str | None = None
    owned: bool | None = None  # True/False when the platform carries our ownership marker
    # the lineage of the state the marker names (None: it names none, as an older reconciler's did)
    owner: str | None = None
    status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # non-secret display data (auth_url, ...)
    # Field ownership (three-way diff): the live values of projection paths that belong to the
    # platform, i.e. neither declared by the manifest nor last applied ("scope.branch" -> ""). The
    # engine fills it before ``Provider.update``; an adapter whose platform replaces a whole
    # sub-object (Airweave's PATCH ``config``) sends these along so an update never resets them.
    # A path last applied but no longer declared is in neither the connector nor here: a
    # whole-object write drops it (the platform's default returns); a merge write sends its reset.
    unowned: Mapping[str, Any] = field(default_factory=lambda: _NOTHING_UNOWNED)

    def marked_by_another(self, lineage: str | None) -> bool:
        """Whether the platform's ownership marker says a state other than the one of ``lineage``
        manages this object. A marker naming this lineage on an object with no entry is one this state
        forgot (``state rm``), free to import; one naming no lineage may be anyone's."""
        return bool(self.owned) and (self.owner is None or self.owner != lineage)
