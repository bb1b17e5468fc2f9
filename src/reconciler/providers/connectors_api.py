"""Connectors API adapter: ``/v1/connectors`` CRUD with PUT updates and manual syncs.

Mapping (see ``emulators/connectors_api.py`` for the API's shapes and the choices made where the
docs are silent; the per-type rules are ``reconciler.scope_rules``):
- identity = ``name``; ``source`` = ``type``; ``target`` = ``collection``; ``scope`` = ``config``
  (with the server's defaults filled in, so an unchanged manifest projects equal);
  ``credentials`` = ``credentials`` (write-only).
- The list is global and its items lack ``config``: live connectors from the list are incomplete,
  carry ``updatedAt`` as their version, and :meth:`read` GETs the detail. The seed shows no paging
  (a bare ``{"data": [...]}``, line 15): :func:`paging.walk` follows a cursor or Link header when
  the server shows one and refuses to plan from a full page it cannot see past.
- PUT (seed lines 74-83) sends ``name`` and the whole ``config`` (desired keys plus the
  platform-owned ones in ``LiveConnector.unowned``), so a server that replaces ``config`` keeps
  what it owns; when the answer shows keys we did not send (a server that merges), a second PUT
  removes them with ``null`` (JSON merge patch). Either way the next plan is empty.
- OAuth types (google_drive, notion: "OAuth handled separately", lines 56, 60, 128-146) are
  created without credentials and wait as ``pending`` until a person completes the consent
  screen: the adapter asks ``GET /v1/connectors/oauth/{type}/authorize`` for its URL, which plan,
  apply and status print.
- POST create is not idempotent; a lost answer surfaces as ``OutcomeUnknown`` and :meth:`lookup`
  finds the connector by name in its collection.
- Sync triggers are retried even when their outcome is unknown: a duplicate sync only re-indexes,
  while a lost one leaves data stale.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

import httpx

from ..errors import ProviderError
from ..http import seg
from ..model import Connector, LiveConnector, Secret
from ..scope_rules import CONNECTORS_API as TYPES
from ..scope_rules import CONNECTORS_API_DEFAULTS as CONFIG_DEFAULTS
from . import paging
from .base import Capabilities, ConnectorStatus, NothingToSync, Provider, SyncJob, sync_status

JOB_STATUSES = {"queued": "queued", "pending": "queued", "running": "running", "completed": "completed",
                "succeeded": "completed", "failed": "failed", "cancelled": "cancelled", "canceled": "cancelled"}
OAUTH_TYPES = frozenset(t for t, rules in TYPES.items() if rules.oauth)


def _reveal(credentials: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in credentials.items():
        if isinstance(value, Secret):
            out[key] = value.reveal()
        elif isinstance(value, Mapping):
            out[key] = _reveal(value)
        else:  # the manifest loader wraps every credential; anything else is a programming error
            raise TypeError(f"credential {key!r} is not a Secret")
    return out



class ConnectorsApiProvider(Provider):
    type = "connectors-api"
    capabilities = Capabilities(
        updatable=frozenset({"name", "scope", "credentials"}),
        replace_on=frozenset({"source", "target"}),
        schedule_forms=frozenset(),
        list_is_complete=False,
        ownership_marker=False,
        can_sync=True,
        can_cancel_sync=False,
        create_before_destroy=True,  # names are not unique: the replacement is a second connector
        default_url="https://api.connectors-api.com",
    )
    page_limit = 100  # the platform's cap: the fewest list calls


    def error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:300] or response.reason_phrase
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            text = f"{error.get('code', 'error')}: {error.get('message', '')}"
            details = error.get("details") or []
            if details:
                text += " (" + "; ".join(f"{d.get('field')}: {d.get('message')}" for d in details) + ")"
            return text
        if isinstance(body, dict):
            for key in ("error", "detail", "message"):
                if body.get(key):
                    return str(body[key])
        return str(body)[:300]

    # -- identity and projection ------------------------------------------------------------
    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        # OAuth types (google_drive, notion) take none
        rules = TYPES.get(live.source)
        return {f: None for f in rules.credentials} if rules and not rules.oauth else {}

    def identity(self, connector: Connector) -> str:
        return connector.name

    def _scope(self, type_name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
        if not config:
            return {}
        return {**CONFIG_DEFAULTS.get(type_name, {}), **config}

    def scope_defaults(self, source: str) -> dict[str, Any]:
        return dict(CONFIG_DEFAULTS.get(source, {}))

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        fields: dict[str, Any] = {"source": connector.source, "target": connector.target}
        scope = self._scope(connector.source, connector.scope)
        if scope:
            fields["scope"] = scope
        return fields

    def _live(self, item: dict[str, Any], *, complete: bool) -> LiveConnector:
        fields: dict[str, Any] = {"source": item["type"], "target": item["collection"]}
        if complete:
            scope = dict(item.get("config") or {})
            if scope:
                fields["scope"] = scope
        extra = {"last_sync": item["lastSync"]} if item.get("lastSync") else {}
        return LiveConnector(
            id=item["id"],
            key=item["name"],
            name=item["name"],
            source=item["type"],
            target=item["collection"],
            fields=fields,
            complete=complete,
            version=item.get("updatedAt"),
            status=item.get("status"),
            extra=extra,
        )

    # -- reads ------------------------------------------------------------------------------
    @staticmethod
    def _next(body: Any) -> paging.Next:
        pages = body.get("pagination") if isinstance(body, dict) else None
        if not isinstance(pages, dict):
            return paging.Next()
        cursor = pages.get("nextCursor")
        return paging.Next(cursor=cursor or None, end=not cursor and pages.get("hasMore") is False)

    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        # one global list; with targets given, only what lives in them is ours to consider
        wanted = {t for t in targets if t}
        for item in paging.walk(self.http, "v1/connectors", base_url=self.config.url or self.capabilities.default_url,
                                limit=self.page_limit, what=f"{self.config.name} (connectors-api)", next_of=self._next):
            if not wanted or item.get("collection") in wanted:
                yield self._with_auth_url(self._live(item, complete=False))

    def _with_auth_url(self, live: LiveConnector) -> LiveConnector:
        """A connector waiting for its OAuth consent carries the URL a person must open."""
        if live.source in OAUTH_TYPES and live.status == "pending":
            body = self.http.json("GET", f"v1/connectors/oauth/{quote(live.source, safe='')}/authorize", kind="get",
                                  params={"connectorId": live.id})
            url = ((body or {}).get("data") or {}).get("authUrl")
            if url:
                live.extra["auth_url"] = url
                # no sync can start before the consent screen is done: sync_on_apply waits for it
                live.extra["sync_started"] = True
        return live

    def read(self, live: LiveConnector) -> LiveConnector:
        body = self.http.json("GET", f"v1/connectors/{quote(live.id, safe='')}", kind="get")
        full = self._live(body["data"], complete=True)
        for key in ("auth_url", "sync_started"):
            if key in live.extra:
                full.extra[key] = live.extra[key]
        return full

    def lookup(self, connector: Connector) -> LiveConnector | None:
        for live in self.list([connector.target] if connector.target else []):
            if live.key == connector.name:
                return self.read(live)
        return None

    # -- writes -----------------------------------------------------------------------------
    def _credentials(self, connector: Connector) -> dict[str, Any]:
        if connector.source in OAUTH_TYPES or not connector.credentials:
            return {}  # authorized in a browser: the platform takes no credentials for these
        return {"credentials": _reveal(connector.credentials)}

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        if not connector.target:
            raise ProviderError(f"{self.config.name} (connectors-api): connector {connector.name!r} has no target collection")
        body = {"name": connector.name, "type": connector.source, "collection": connector.target,
                "config": dict(connector.scope), **self._credentials(connector)}
        data = self.http.json("POST", "v1/connectors", kind="create", json=body)
        return self._with_auth_url(self._live(data["data"], complete=True))

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        path = f"v1/connectors/{quote(live.id, safe='')}"
        config = self._scope(connector.source, connector.scope)
        for dotted, value in live.unowned.items():
            key = dotted[len("scope."):] if dotted.startswith("scope.") else None
            if key and "." not in key and key not in config:
                config[key] = value  # the platform's own value: a replacing PUT must not drop it
        body = {"name": connector.name, "config": config, **self._credentials(connector)}
        data = self.http.json("PUT", path, kind="update", json=body)["data"]
        left = sorted(set(data.get("config") or {}) - set(config))
        if left:  # the server merged: what we no longer declare is still there; remove it
            data = self.http.json("PUT", path, kind="update", json={"config": {k: None for k in left}})["data"]
        return self._live(data, complete=True)

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", f"v1/connectors/{quote(live.id, safe='')}", kind="delete", ok_404=True)

    # -- syncs ------------------------------------------------------------------------------
    @staticmethod
    def _job(data: dict[str, Any]) -> SyncJob:
        progress = {k: int(v) for k, v in (data.get("progress") or {}).items() if isinstance(v, (int, float))}
        return SyncJob(
            id=data["jobId"],
            status=sync_status(data.get("status"), data.get("completedAt"), JOB_STATUSES),
            progress=progress,
            error=data.get("error"),
            started_at=data.get("startedAt"),
            finished_at=data.get("completedAt"),
        )

    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        if live.source in OAUTH_TYPES and live.status == "pending":
            # nothing can run before the consent: a skip that says what to do, not a failed sync
            # (a nightly `sync --wait` used to exit 1 on the emulator's 409 oauth_pending)
            where = live.extra.get("auth_url")
            raise NothingToSync(f"{live.name or live.id} waits for authorization"
                                + (f": open {where}" if where else "; its authorize URL is in `reconcile status`"))
        body = self.http.json("POST", f"v1/connectors/{seg(live.id)}/sync", kind="sync", safe_to_retry=True)
        return self._job(body["data"])

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        body = self.http.json("GET", f"v1/connectors/{seg(live.id)}/sync/{seg(job_id)}", kind="sync_status")
        return self._job(body["data"])

    def status(self, live: LiveConnector) -> ConnectorStatus:
        body = self.http.json("GET", f"v1/connectors/{quote(live.id, safe='')}", kind="get")
        current = self._with_auth_url(self._live(body["data"], complete=True))
        # the API lists no jobs (seeds/connectors-api.txt): ``lastSync`` is when the latest sync
        # ended, and the connector's own status says how (``error`` after a failed one)
        ended = current.extra.get("last_sync")
        outcome = {"active": "completed", "error": "failed"}.get(str(current.status), "finished")
        last = SyncJob(id="", status=outcome, finished_at=ended) if ended else None
        return ConnectorStatus(status=current.status, last_sync=last, auth_url=current.extra.get("auth_url"))

    # -- target existence (plan time) ---------------------------------------------------------
    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        # the API documents no way to list or read a collection (seeds/connectors-api.txt): a
        # collection is proven only by a connector living in it (the plan checks that first); an
        # unknown one shows as the create's 404, and a replace creates first, so it loses nothing
        return set()


ADAPTER = ConnectorsApiProvider
