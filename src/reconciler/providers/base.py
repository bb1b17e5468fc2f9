"""The provider adapter interface: the only code that knows a platform's HTTP API.

An adapter maps the common model (:class:`~reconciler.model.Connector`) to one platform and back
(:class:`~reconciler.model.LiveConnector`), and declares in :class:`Capabilities` what the platform
can change in place and what forces a replace. The engine reads only these declarations; it never
asks which platform it is talking to.

The normalised *projection* both sides are compared on is a dict with these keys (absent keys are
"not set"): ``source``, ``target``, ``description``, ``scope``, ``schedule``, ``syncs``,
``member``. Credentials are compared by fingerprint in the engine, never through the projection.
Adapters fill in platform defaults on the desired side (or drop them on the live side) so that an
unchanged manifest projects equal to what the platform reports.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator, Mapping

from ..errors import ReconcileError
from ..hosts import check_allowed_host
from ..http import CallCounter, HttpClient
from ..model import Connector, LiveConnector, ProviderConfig


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform allows; the engine plans from this alone."""

    # projection fields (plus "credentials") an update call can change in place
    updatable: frozenset[str]
    # projection fields whose change forces delete + create
    replace_on: frozenset[str]
    # schedule forms accepted ("cron", "every", "continuous", "manual"); empty: no scheduler
    schedule_forms: frozenset[str] = frozenset()
    # the list endpoint returns every projected field (else: detail GET when version moved)
    list_is_complete: bool = True
    # the platform stores a marker saying "managed by the reconciler", naming the state (state_lineage)
    ownership_marker: bool = False
    # syncs can be triggered / watched / cancelled through the API
    can_sync: bool = False
    can_cancel_sync: bool = False
    # a replacement can live beside the original (no unique name or key clash), so a replace creates
    # first and deletes second: a failed create loses nothing (lifecycle.create_before_destroy overrides)
    create_before_destroy: bool = False
    # the default API base URL
    default_url: str = ""
    # create takes an idempotency key the platform remembers (even after a delete): the executor
    # journals a nonce per create attempt so that only a retry of the same attempt reuses a key
    idempotent_create: bool = False
    # the list call takes a target (collection, workspace): with none named, nothing can be listed,
    # so ``import`` without --target must ask for one rather than report "nothing to import"
    lists_per_target: bool = False


@dataclass(slots=True)
class SyncJob:
    """One sync run, as the platform reports it."""

    id: str
    status: str  # queued | running | completed | failed | cancelled, or the platform's own word
    progress: dict[str, int] = field(default_factory=dict)  # records fetched, collected/parsed/indexed, ...
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def done(self) -> bool:
        # only the two words known to mean "still going" are waited on: a word the adapter does
        # not know is shown as the platform said it, not polled until --timeout runs out
        return self.status not in ("queued", "running")


class NothingToSync(ReconcileError):
    """``trigger_sync``: the connector has nothing a sync could run (e.g. a Nango connection whose
    integration deploys no syncs); the message says why. Not a failure: there is nothing to wait
    for, so callers skip it (a ReconcileError only so that an unprepared caller still prints it)."""


def sync_status(word: Any, finished_at: Any, known: Mapping[str, str]) -> str:
    """The common status of a sync from the platform's word (``known``: word -> common status).

    A sync whose finish time is set has finished, whatever its word says (a "running" with a
    ``completed_at`` is completed); a word not in ``known`` is passed through lower-cased, so it is
    shown as the platform said it and not waited on (:attr:`SyncJob.done`)."""
    text = str(word or "").strip().lower()
    mapped = known.get(text)
    if finished_at:
        if mapped in ("completed", "failed", "cancelled"):
            return mapped
        return text if mapped is None and text else "completed"
    return mapped or text or "running"


@dataclass(slots=True)
class ConnectorStatus:
    """Live status for ``reconcile status``."""

    status: str | None
    last_sync: SyncJob | None = None
    next_run: str | None = None
    auth_url: str | None = None
    note: str | None = None  # a plain-words fact about its syncing ("has no sync: ...")


class Provider(ABC):
    """One adapter instance per ``providers:`` entry; thread-safe (calls run in parallel)."""

    type: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def doc_notes(cls) -> list[str]:
        """Markdown lines for ``docs/providers.md`` about this platform (what a plan costs, what a
        schedule form means there, ...). Default: none."""
        return []
    # an adapter whose platform needs transport-level care (rate-limit pacing) supplies a subclass
    http_class: ClassVar[type[HttpClient]] = HttpClient

    def __init__(self, config: ProviderConfig, *, parallelism: int = 8, counter: CallCounter | None = None,
                 timeout: float = 30.0) -> None:
        self.config = config
        self.parallelism = max(1, parallelism)
        # the lineage of the state this run plans and applies against, set by the engine before the
        # first list: an adapter with an ownership marker names it there, so that a marked object in
        # no entry tells "this state forgot it" (state rm) from "another state manages it"
        self.state_lineage: str | None = None
        # targets a list call was told do not exist (a 404 on the container): missing_targets reuses them
        self.absent_targets: set[str] = set()
        from ..manifest.build import DEFAULT_URLS

        check_allowed_host(config.url or self.capabilities.default_url, what=f"provider {config.name!r} ({self.type})",
                           official_urls=(self.capabilities.default_url, DEFAULT_URLS.get(self.type, "")),
                           where=config.url_location)
        self.http = self.http_class(
            config.url or self.capabilities.default_url,
            headers=self.auth_headers(),
            what=f"{config.name} ({self.type})",
            allow_insecure_http=config.allow_insecure_http,
            parallelism=parallelism,
            counter=counter,
            timeout=timeout,
            error_parser=self.error_message,
            permanent=self.permanent_error,
        )

    # -- wiring ---------------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every call: a bearer token unless the platform says otherwise."""
        key = self.config.api_key
        return {"Authorization": f"Bearer {key.reveal()}"} if key is not None else {}

    def error_message(self, response) -> str:  # type: ignore[no-untyped-def]
        """Turn the platform's error body into one readable line (never echoing secrets)."""
        from ..http import default_error_message

        return default_error_message(response)

    def permanent_error(self, response) -> bool:  # type: ignore[no-untyped-def]
        """Whether a 5xx answer is permanent (retrying cannot help): then it fails at once, not after
        the retry policy's attempts. Default: no 5xx is."""
        return False

    def recall(self, entries: Iterable[Any]) -> None:
        """What the state recorded of this provider's objects (``StateEntry`` id, key, fields), given
        before a list: an adapter whose platform answers with ids of its own maps them back through
        it. Default: nothing to map."""

    def close(self) -> None:
        self.http.close()

    # -- identity and projection ------------------------------------------------------------
    @abstractmethod
    def identity(self, connector: Connector) -> str:
        """The key a live object of this connector carries (name, natural key, ...).

        For platforms without any name or natural key return ``""``: such connectors are matched
        through the state only.
        """

    @classmethod
    def containers(cls, connector: Connector) -> set[str]:
        """What must exist on the platform before this connector can (its collection, workspace,
        ...): the sandbox pre-creates these in its emulator."""
        return {connector.target} if connector.target else set()

    @abstractmethod
    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        """The normalised projection of a desired connector, platform defaults filled in."""

    def scope_defaults(self, source: str) -> dict[str, Any]:
        """The values the platform gives ``source``'s scope keys when they are not set (key -> value).

        Field ownership uses them: a key the manifests stop setting whose live value already is its
        default plans no reset, and ``import`` leaves such values out of the manifest it writes.
        Called once per connector while planning: answer from a table or a per-run cache. Default:
        none known."""
        return {}

    # -- reads ------------------------------------------------------------------------------
    @abstractmethod
    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        """Every live connector in the given targets (collections, workspaces, ...).

        ``targets`` are the targets the manifests name plus those in the state; platforms with a
        global list may ignore them. Yield as pages arrive.
        """

    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        """Which of ``targets`` (named as :meth:`containers` names them) do not exist on the platform.

        Called by the plan after :meth:`list`, only for targets no live connector already proves, with
        at most one listing call per provider: an adapter whose list already answered "no such
        target" (``absent_targets``) reuses that. The default knows of none missing."""
        return set()

    def list_everything(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        """Every live connector the account can see, whatever its target (``import`` without
        ``--target``). Platforms whose list is per target list the ``targets`` they are given."""
        return self.list(targets)

    def needs_detail(self, connector: Connector | None, last_fields: dict[str, Any] | None) -> bool:
        """Whether the plan must read this connector's detail even though its version marker has not
        moved: for fields the platform changes without moving the marker."""
        return False

    def read(self, live: LiveConnector) -> LiveConnector:
        """The complete projection of one live connector (a detail GET). Only called when the
        list is incomplete and the object's version moved since the state saw it."""
        return live

    def lookup(self, connector: Connector) -> LiveConnector | None:
        """Find the live object for ``connector`` after a create whose outcome was unknown."""
        key = self.identity(connector)
        if not key:
            return None
        for live in self.list([connector.target] if connector.target else []):
            if live.key == key:
                return live
        return None

    def import_blocker(self, live: LiveConnector) -> str | None:
        """Why ``reconcile import`` cannot write a manifest for ``live`` (it is skipped, with this
        reason), or None. Default: every live connector can be imported."""
        return None

    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        """For ``reconcile import``: the credential fields a manifest for ``live`` takes, as
        field name -> None (a secret: written as a ``${VAR}`` placeholder) or a literal (the auth
        ``type``). Platforms never return credentials, so only their names can be known; the default
        knows none and the imported manifest carries no credentials block."""
        return {}

    # -- writes -----------------------------------------------------------------------------
    @abstractmethod
    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        """Create it. ``idempotency_key`` is stable for the same desired connector; platforms
        that accept one must send it."""

    @abstractmethod
    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        """Change in place the projection fields in ``changed`` (may include ``credentials``)."""

    @abstractmethod
    def delete(self, live: LiveConnector) -> None:
        """Delete it; a 404 counts as success (already gone)."""

    # -- syncs (only when capabilities.can_sync) ----------------------------------------------
    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        raise NotImplementedError(f"{self.type} has no sync API")

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        raise NotImplementedError(f"{self.type} has no sync API")

    def cancel_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        raise NotImplementedError(f"{self.type} cannot cancel a sync")

    def status(self, live: LiveConnector) -> ConnectorStatus:
        return ConnectorStatus(status=live.status, auth_url=live.extra.get("auth_url"))
