"""Connectors API adapter: ``/v1/connectors`` CRUD with PUT updates and manual syncs.

Mapping (see ``emulators/connectors_api.py`` for the API's shapes and the choices made where the
docs are silent):
- identity = ``name``; ``source`` = ``type``; ``target`` = ``collection``; ``scope`` = ``config``
  (with the server's defaults filled in, so an unchanged manifest projects equal);
  ``credentials`` = ``credentials`` (write-only).
- The list is global, cursor-paged, and its items lack ``config``: live connectors from the list are
  incomplete, carry ``updatedAt`` as their version, and :meth:`read` GETs the detail.
- PUT replaces the connector: every update sends name, type, collection, config and credentials.
- POST create is not idempotent; a lost answer surfaces as ``OutcomeUnknown`` and :meth:`lookup`
  finds the connector by name in its collection.
- Sync triggers are retried even when their outcome is unknown: a duplicate sync only re-indexes,
  while a lost one leaves data stale.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import httpx

from ..errors import ProviderError
from ..model import Connector, LiveConnector, Secret
from .base import Capabilities, ConnectorStatus, Provider, SyncJob

# defaults the server fills into config when the caller leaves them out
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {"postgresql": {"schema": "public"}}
JOB_STATUSES = {"queued": "queued", "pending": "queued", "running": "running", "completed": "completed",
                "succeeded": "completed", "failed": "failed", "cancelled": "cancelled", "canceled": "cancelled"}


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



DOCUMENTED_CREDENTIALS = {"s3": ("accessKeyId", "secretAccessKey")}

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
        default_url="https://api.connectors.example.com",
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
        # only the documented credential objects; OAuth types (google_drive, notion) take none
        return {f: None for f in DOCUMENTED_CREDENTIALS.get(live.source, ())}

    def identity(self, connector: Connector) -> str:
        return connector.name

    def _scope(self, type_name: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
        if not config:
            return {}
        return {**CONFIG_DEFAULTS.get(type_name, {}), **config}

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
    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        # one global list; with targets given, only what lives in them is ours to consider
        wanted = {t for t in targets if t}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_limit}
            if cursor:
                params["cursor"] = cursor
            body = self.http.json("GET", "v1/connectors", kind="list", params=params)
            for item in body.get("data") or []:
                if not wanted or item.get("collection") in wanted:
                    yield self._live(item, complete=False)
            cursor = (body.get("pagination") or {}).get("nextCursor")
            if not cursor:
                return

    def read(self, live: LiveConnector) -> LiveConnector:
        body = self.http.json("GET", f"v1/connectors/{live.id}", kind="get")
        return self._live(body["data"], complete=True)

    def lookup(self, connector: Connector) -> LiveConnector | None:
        for live in self.list([connector.target] if connector.target else []):
            if live.key == connector.name:
                return self.read(live)
        return None

    # -- writes -----------------------------------------------------------------------------
    def _body(self, connector: Connector) -> dict[str, Any]:
        if not connector.target:
            raise ProviderError(f"{self.config.name} (connectors-api): connector {connector.name!r} has no target collection")
        body: dict[str, Any] = {"name": connector.name, "type": connector.source, "collection": connector.target,
                                "config": dict(connector.scope)}
        if connector.credentials:
            body["credentials"] = _reveal(connector.credentials)
        return body

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        body = self.http.json("POST", "v1/connectors", kind="create", json=self._body(connector))
        return self._live(body["data"], complete=True)

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        body = self.http.json("PUT", f"v1/connectors/{live.id}", kind="update", json=self._body(connector))
        return self._live(body["data"], complete=True)

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", f"v1/connectors/{live.id}", kind="delete", ok_404=True)

    # -- syncs ------------------------------------------------------------------------------
    @staticmethod
    def _job(data: dict[str, Any]) -> SyncJob:
        progress = {k: int(v) for k, v in (data.get("progress") or {}).items() if isinstance(v, (int, float))}
        return SyncJob(
            id=data["jobId"],
            status=JOB_STATUSES.get(str(data.get("status", "")).lower(), "running"),
            progress=progress,
            error=data.get("error"),
            started_at=data.get("startedAt"),
            finished_at=data.get("completedAt"),
        )

    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        body = self.http.json("POST", f"v1/connectors/{live.id}/sync", kind="sync", safe_to_retry=True)
        return self._job(body["data"])

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        body = self.http.json("GET", f"v1/connectors/{live.id}/sync/{job_id}", kind="sync_status")
        return self._job(body["data"])

    def status(self, live: LiveConnector) -> ConnectorStatus:
        body = self.http.json("GET", f"v1/connectors/{live.id}", kind="get")
        current = self._live(body["data"], complete=True)
        return ConnectorStatus(status=current.status)


ADAPTER = ConnectorsApiProvider
