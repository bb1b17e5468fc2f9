"""Aimable adapter: collection connectors under ``/v1/spaces/{space}/collections/{collection}``.

Mapping (see ``shared/providers.md``): ``source`` = ``provider_slug``, ``target`` =
``"space_id/collection_id"``, ``scope`` = ``scope_config`` (the platform default is ``{}``),
``credentials`` = the write-only ``credential`` object. Aimable stores no name, description or
schedule, so connectors are matched through the state (``identity`` is ``""``) and syncs run on
demand only. A create carries the engine's ``Idempotency-Key``, which makes it safe to retry after a
lost answer: the platform hands back the connector the first attempt made.

Lists take ``limit`` (≤ 100, seed line 79); how the next page is reached is not documented ("all
operations support pagination", line 86). :func:`paging.walk` follows a ``next_cursor`` or Link
header the server shows and refuses to plan from a full page it cannot see past (issue 18).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import httpx

from ..errors import ProviderError
from ..http import seg
from ..model import Connector, LiveConnector, Secret
from . import paging
from .base import Capabilities, ConnectorStatus, Provider, SyncJob, sync_status

MAX_PAGE = 100


def format_error(status: int, body: Any) -> str:
    """One readable line from an Aimable error body, naming the offending field from ``loc``."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                parts.append(str(item))
                continue
            loc = ".".join(str(part) for part in item.get("loc", []))
            msg = str(item.get("msg", "invalid value"))
            # only loc and msg: FastAPI-style bodies may also carry "input", which can be a secret
            parts.append(f"{loc}: {msg}" if loc else msg)
        text = "; ".join(parts) or "invalid request"
    elif detail is not None:
        text = str(detail)
    else:
        text = str(body)[:500] if body else ""
    if status == 401:
        return f"authentication failed: {text or 'Missing or invalid access token.'} (check the provider's api_key)"
    if status == 403:
        return f"permission denied: {text or 'Forbidden'} (the API key cannot access this space or collection)"
    if status == 422:
        return f"invalid request: {text}"
    return text


def split_target(target: str | None) -> tuple[str, str]:
    space, _, collection = (target or "").partition("/")
    if not space or not collection or "/" in collection:
        raise ProviderError(f"aimable target {target!r} must be 'space_id/collection_id'")
    return space, collection


def _plain(value: Any) -> Any:
    """Manifest values (possibly ruamel/YAML containers) as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _reveal(value: Any) -> Any:
    # the only place secrets are unwrapped: building the request body
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Mapping):
        return {str(k): _reveal(v) for k, v in value.items()}
    return value


# the seed shows "running" (line 53); the rest are the emulator's and common synonyms
SYNC_STATUSES = {"pending": "queued", "queued": "queued", "running": "running", "completed": "completed",
                 "succeeded": "completed", "failed": "failed", "cancelled": "cancelled", "canceled": "cancelled"}


def _sync_job(data: Mapping[str, Any]) -> SyncJob:
    # the seed says to watch status, records_fetched and completed_at (line 61): completed_at set
    # means finished, whatever the word
    return SyncJob(
        id=str(data["id"]),
        status=sync_status(data.get("status"), data.get("completed_at"), SYNC_STATUSES),
        progress={"records_fetched": int(data.get("records_fetched") or 0)},
        error=data.get("error"),
        started_at=data.get("created_at"),
        finished_at=data.get("completed_at"),
    )


class AimableProvider(Provider):
    type = "aimable"
    capabilities = Capabilities(
        lists_per_target=True,  # each list call is for one target (import needs --target to start)
        updatable=frozenset({"scope", "credentials"}),
        replace_on=frozenset({"source", "target"}),
        schedule_forms=frozenset(),
        list_is_complete=True,  # list items carry provider_slug and scope_config
        ownership_marker=False,
        can_sync=True,
        can_cancel_sync=True,
        create_before_destroy=True,  # connectors are addressed by id alone
        default_url="https://api.aimable.ai",
        idempotent_create=True,  # Idempotency-Key required (seed line 10)
    )
    page_size = MAX_PAGE

    # -- wiring -------------------------------------------------------------------------------
    def error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500] or response.reason_phrase
        return format_error(response.status_code, body)

    @staticmethod
    def _base(target: str | None) -> str:
        space, collection = split_target(target)
        return f"v1/spaces/{seg(space)}/collections/{seg(collection)}/connectors"

    def _one(self, live: LiveConnector) -> str:
        return f"{self._base(live.target)}/{seg(live.id)}"

    # -- identity and projection ----------------------------------------------------------------
    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        return {"access_token": None}  # the seed's credential object; refresh_token is optional

    def identity(self, connector: Connector) -> str:
        return ""  # Aimable stores no name: the state maps name -> id

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        return {"source": connector.source, "target": connector.target, "scope": _plain(connector.scope or {})}

    def _live(self, data: Mapping[str, Any], target: str) -> LiveConnector:
        return LiveConnector(
            id=str(data["id"]),
            key="",
            name=None,
            source=str(data.get("provider_slug", "")),
            target=target,
            fields={"source": data.get("provider_slug"), "target": target,
                    "scope": _plain(data.get("scope_config") or {})},
            complete=True,
            version=data.get("updated_at"),
            status=data.get("status"),
            extra={k: data[k] for k in ("principal_id", "created_at") if data.get(k) is not None},
        )

    # -- reads --------------------------------------------------------------------------------
    @staticmethod
    def _next(body: Any) -> paging.Next:
        if not isinstance(body, dict) or "next_cursor" not in body:
            return paging.Next()
        cursor = body.get("next_cursor")
        return paging.Next(cursor=cursor or None, end=not cursor)

    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        for target in sorted({t for t in targets if t}):
            # a 404 (ok_404): the collection is gone, and its connectors with it
            for item in paging.walk(self.http, self._base(target), base_url=self.config.url or self.capabilities.default_url,
                                    limit=min(self.page_size, MAX_PAGE), what=f"{self.config.name} (aimable)",
                                    next_of=self._next, ok_404=True,
                                    on_404=lambda t=target: self.absent_targets.add(t)):
                yield self._live(item, target)

    def read(self, live: LiveConnector) -> LiveConnector:
        body = self.http.json("GET", self._one(live), kind="get")
        return self._live(body["data"], live.target or "")

    # -- writes -------------------------------------------------------------------------------
    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        split_target(connector.target)
        body = {
            "provider_slug": connector.source,
            "credential": _reveal(connector.credentials),
            "scope_config": _plain(connector.scope or {}),
        }
        # the Idempotency-Key makes a repeat after a lost answer return the same connector
        data = self.http.json("POST", self._base(connector.target), kind="create", json=body,
                              headers={"Idempotency-Key": idempotency_key}, safe_to_retry=True)
        return self._live(data["data"], connector.target or "")

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        fixed = changed - self.capabilities.updatable
        if fixed:
            raise ProviderError(f"aimable cannot change {', '.join(sorted(fixed))} in place; the connector "
                                "must be replaced")
        body: dict[str, Any] = {}
        if "scope" in changed:
            body["scope_config"] = _plain(connector.scope or {})
        if "credentials" in changed:
            body["credential"] = _reveal(connector.credentials)
        if not body:
            return live
        data = self.http.json("PATCH", self._one(live), kind="update", json=body)
        return self._live(data["data"], live.target or "")

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", self._one(live), kind="delete", ok_404=True)

    # -- syncs ----------------------------------------------------------------------------------
    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        try:
            # a repeated trigger cannot start a second sync (one runs at a time), so retrying is safe
            data = self.http.json("POST", f"{self._one(live)}/sync", kind="sync", safe_to_retry=True)
        except ProviderError as exc:
            if exc.status != 409:
                raise
            running = self.last_sync(live)
            if running is None or running.done:
                raise
            return running  # a sync was already running (or our retried trigger started it)
        return _sync_job(data["data"])

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        data = self.http.json("GET", f"{self._one(live)}/sync/{seg(job_id)}", kind="sync")
        return _sync_job(data["data"])

    def cancel_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        try:
            # the API cancels "the running sync"; only send it when that is the job asked for
            current = self.get_sync(live, job_id)
            if current.done:
                return current
            data = self.http.json("POST", f"{self._one(live)}/sync/cancel", kind="sync")
        except ProviderError as exc:
            if exc.status != 409:
                raise
            return self.get_sync(live, job_id)  # it ended between our read and the cancel
        return _sync_job(data["data"])

    def last_sync(self, live: LiveConnector) -> SyncJob | None:
        body = self.http.json("GET", f"{self._one(live)}/sync", kind="sync", params={"limit": 1})
        items = body.get("data") or []
        return _sync_job(items[0]) if items else None

    def status(self, live: LiveConnector) -> ConnectorStatus:
        current = self.read(live)
        return ConnectorStatus(status=current.status, last_sync=self.last_sync(live))

    # -- extras ---------------------------------------------------------------------------------
    def browse(self, live: LiveConnector, parent_id: str | None = None) -> list[dict[str, Any]]:
        """What the connector can see below ``parent_id`` (folders, channels, repositories, ...),
        to check a scope before applying it."""
        params = {"parent_id": parent_id} if parent_id else None
        body = self.http.json("GET", f"{self._one(live)}/browse", kind="get", params=params)
        return list(body.get("data") or [])

    # -- target existence (plan time) ---------------------------------------------------------
    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        # the connectors list of an unknown collection is 404 "Collection not found": the plan's own
        # list call already said which are missing, no further call (an unknown space is a 403 there)
        return set(targets) & self.absent_targets


ADAPTER = AimableProvider
