"""Airweave adapter: source connections inside collections.

Mapping (the API is ``specs/airweave-openapi.json``; ``emulators/airweave.py`` serves it):
- identity = ``name`` (the connector's name; Airweave allows 4-42 characters).
- ``source`` = ``short_name``, ``target`` = ``readable_collection_id``: neither can be PATCHed,
  so a change to either is a replace.
- ``scope`` = ``config`` (absent when empty), ``description`` as is (absent when null).
- ``schedule``: ``{cron}`` -> ``{"cron": c}``; ``{continuous, cursor_field}`` ->
  ``{"continuous": True, "cursor_field"?}``; no schedule -> absent, which is also what a desired
  ``manual: true`` projects to. Airweave has no interval form.
- ``credentials`` -> ``authentication``; the reserved key ``type`` picks the variant: ``direct``
  (default; ``{"credentials": {...}}``), ``oauth_token`` (access/refresh token, expiry),
  ``oauth_browser`` (no secrets; the connection waits in ``pending_auth`` for a person to open its
  ``auth_url``), ``auth_provider`` (``provider_readable_id`` + the rest as ``provider_config``).
- The list lacks config and schedule, so it is incomplete; ``modified_at`` is the version that
  tells the engine whether a detail GET is needed.
- Create has no idempotency key: a lost create surfaces as OutcomeUnknown and :meth:`lookup`
  finds it by name in its collection.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import httpx

from ..errors import ProviderError
from ..model import Connector, LiveConnector, Schedule
from .base import Capabilities, ConnectorStatus, Provider, SyncJob

# the platform's SyncJobStatus -> SyncJob.status; "cancelling" is not finished yet
JOB_STATUS = {"created": "queued", "pending": "queued", "running": "running", "cancelling": "running",
              "completed": "completed", "failed": "failed", "cancelled": "cancelled"}
PROGRESS_KEYS = ("entities_inserted", "entities_updated", "entities_deleted", "entities_failed")
AUTH_TYPES = ("direct", "oauth_token", "oauth_browser", "auth_provider")


def _cron(text: str) -> str:
    return " ".join(text.split())  # spacing is not a change


def schedule_projection(schedule: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ScheduleConfig/ScheduleDetails object in the normalised shape (None: no schedule)."""
    if not schedule:
        return None
    if schedule.get("continuous"):
        out: dict[str, Any] = {"continuous": True}
        if schedule.get("cursor_field"):
            out["cursor_field"] = schedule["cursor_field"]
        return out
    if schedule.get("cron"):
        return {"cron": _cron(schedule["cron"])}
    return None


def schedule_body(schedule: Schedule | None) -> dict[str, Any]:
    """The ScheduleConfig to send; ``{"cron": None}`` is how the API says "no automatic syncs"."""
    if schedule is None or schedule.form == "manual":
        return {"cron": None, "continuous": False}
    if schedule.form == "cron":
        return {"cron": _cron(schedule.cron or ""), "continuous": False}
    if schedule.form == "continuous":
        return {"continuous": True, "cursor_field": schedule.cursor_field}
    raise ProviderError(f"airweave has no interval schedules (every: {schedule.every}s); use cron or continuous")


def auth_type(connector: Connector) -> str:
    secret = connector.credentials.get("type")
    kind = secret.reveal() if secret is not None else "direct"
    if kind not in AUTH_TYPES:
        raise ProviderError(f"connector {connector.name!r}: credentials.type {kind!r} is not one of "
                            f"{', '.join(AUTH_TYPES)}")
    return kind


def authentication_body(connector: Connector) -> dict[str, Any] | None:
    """The authentication object built from credentials (values revealed only here)."""
    kind = auth_type(connector)
    values = {k: v.reveal() for k, v in connector.credentials.items() if k != "type"}
    if kind == "direct":
        return {"credentials": values} if values else None
    if kind == "oauth_token":
        return {k: values[k] for k in ("access_token", "refresh_token", "expires_at") if k in values}
    if kind == "auth_provider":
        provider = values.pop("provider_readable_id", None)
        return {"provider_readable_id": provider, **({"provider_config": values} if values else {})}
    # browser flow: only a bring-your-own OAuth client's fields travel
    return {k: values[k] for k in ("client_id", "client_secret", "redirect_uri") if k in values}


def sync_job(job: dict[str, Any]) -> SyncJob:
    return SyncJob(
        id=str(job["id"]),
        status=JOB_STATUS.get(job.get("status") or "", "running"),
        progress={k.removeprefix("entities_"): int(job.get(k) or 0) for k in PROGRESS_KEYS},
        error=job.get("error"),
        started_at=job.get("started_at"),
        finished_at=job.get("completed_at"),
    )


class AirweaveProvider(Provider):
    type = "airweave"
    capabilities = Capabilities(
        updatable=frozenset({"name", "description", "scope", "schedule", "credentials"}),
        replace_on=frozenset({"source", "target"}),
        schedule_forms=frozenset({"cron", "continuous", "manual"}),
        list_is_complete=False,
        ownership_marker=False,
        can_sync=True,
        can_cancel_sync=True,
        create_before_destroy=True,  # names are not unique: the replacement is a second source connection
        default_url="https://api.airweave.ai",
    )
    page_size = 1000  # the API's cap for ``limit``

    def auth_headers(self) -> dict[str, str]:
        key = self.config.api_key
        return {"x-api-key": key.reveal()} if key else {}

    def error_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:300] or response.reason_phrase
        detail = body.get("detail") if isinstance(body, dict) else body
        if isinstance(detail, list):  # FastAPI validation: [{loc, msg, type}]
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = [str(p) for p in item.get("loc", [])]
                    if loc and loc[0] == "body":
                        loc = loc[1:]
                    parts.append(f"{'.'.join(loc) or 'body'}: {item.get('msg', '')}")
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        return str(detail)[:300] if detail is not None else str(body)[:300]

    # -- identity and projection ------------------------------------------------------------
    def identity(self, connector: Connector) -> str:
        return connector.name

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        fields: dict[str, Any] = {"source": connector.source, "target": connector.target}
        if connector.description is not None:
            fields["description"] = connector.description
        if connector.scope:
            fields["scope"] = dict(connector.scope)
        if connector.schedule is not None:
            schedule = connector.schedule.as_dict()
            if "cron" in schedule:
                schedule["cron"] = _cron(schedule["cron"])
            # manual is "no schedule" live; declared, it is owned (None: declared, not set), so a
            # cron set in the UI plans back to manual instead of being the platform's
            fields["schedule"] = None if "manual" in schedule else schedule
        return fields

    def _from_item(self, item: dict[str, Any]) -> LiveConnector:
        """A list item: identity, source, target and version, not config or schedule."""
        return LiveConnector(
            id=str(item["id"]), key=item["name"], name=item["name"], source=item["short_name"],
            target=item["readable_collection_id"],
            fields={"source": item["short_name"], "target": item["readable_collection_id"]},
            complete=False, version=item.get("modified_at"), status=item.get("status"),
            extra={"auth_method": item.get("auth_method"), "created_at": item.get("created_at")},
        )

    def _from_detail(self, body: dict[str, Any]) -> LiveConnector:
        fields: dict[str, Any] = {"source": body["short_name"], "target": body["readable_collection_id"]}
        if body.get("description") is not None:
            fields["description"] = body["description"]
        if body.get("config"):
            fields["scope"] = dict(body["config"])
        schedule = schedule_projection(body.get("schedule"))
        if schedule is not None:
            fields["schedule"] = schedule
        auth = body.get("auth") or {}
        extra: dict[str, Any] = {"auth_method": auth.get("method"), "created_at": body.get("created_at")}
        if auth.get("auth_url"):
            extra["auth_url"] = auth["auth_url"]
        if (body.get("schedule") or {}).get("next_run"):
            extra["next_run"] = body["schedule"]["next_run"]
        return LiveConnector(
            id=str(body["id"]), key=body["name"], name=body["name"], source=body["short_name"],
            target=body["readable_collection_id"], fields=fields, complete=True, version=body.get("modified_at"),
            status=body.get("status"), extra=extra,
        )

    # -- reads ------------------------------------------------------------------------------
    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        for target in dict.fromkeys(t for t in targets if t):
            skip = 0
            while True:
                page = self.http.json("GET", "source-connections", kind="list", ok_404=True,
                                      params={"collection": target, "skip": skip, "limit": self.page_size})
                if page is None:  # the collection does not exist: nothing lives there
                    self.absent_targets.add(target)
                    break
                for item in page:
                    yield self._from_item(item)
                if len(page) < self.page_size:
                    break
                skip += len(page)

    def read(self, live: LiveConnector) -> LiveConnector:
        return self._from_detail(self.http.json("GET", f"source-connections/{live.id}", kind="get"))

    def lookup(self, connector: Connector) -> LiveConnector | None:
        # names are not unique on the platform: the newest match is the create we lost
        matches = [live for live in self.list([connector.target] if connector.target else [])
                   if live.key == connector.name]
        if not matches:
            return None
        return self.read(max(matches, key=lambda live: live.extra.get("created_at") or ""))

    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        # the auth method is in the list item; a direct method's fields are the source's auth_fields
        method = live.extra.get("auth_method") or "direct"
        if method == "oauth_token":
            return {"type": "oauth_token", "access_token": None}
        if method in ("oauth_browser", "oauth_byoc"):
            return {"type": "oauth_browser"}
        if method != "direct":
            return {}
        info = self.http.json("GET", f"sources/{live.source}", kind="get", ok_404=True) or {}
        fields = (info.get("auth_fields") or {}).get("fields") or []
        return {str(f["name"]): None for f in fields if isinstance(f, dict) and f.get("name")}

    # -- writes -----------------------------------------------------------------------------
    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        browser = auth_type(connector) == "oauth_browser"
        body: dict[str, Any] = {
            "name": connector.name,
            "short_name": connector.source,
            "readable_collection_id": connector.target,
            "config": dict(connector.scope),
            # the browser flow cannot sync before a person authorises it; the platform refuses True
            "sync_immediately": bool(connector.sync_on_apply) and not browser,
        }
        if connector.description is not None:
            body["description"] = connector.description
        if connector.schedule is not None and connector.schedule.form != "manual":
            body["schedule"] = schedule_body(connector.schedule)
        auth = authentication_body(connector)
        if auth is not None:
            body["authentication"] = auth
        created = self.http.json("POST", "source-connections", kind="create", json=body)
        live = self._from_detail(created)
        last_job = ((created.get("sync") or {}).get("last_job") or {}).get("id")
        if last_job:
            live.extra["sync_started"] = str(last_job)
        return live

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        body: dict[str, Any] = {}
        if live.name is not None and live.name != connector.name:
            body["name"] = connector.name  # a rename (``moved:``) keeps the object
        if "description" in changed:
            body["description"] = connector.description
        if "scope" in changed:
            body["config"] = dict(connector.scope)
        if "schedule" in changed:
            body["schedule"] = schedule_body(connector.schedule)
        if "credentials" in changed:
            auth = authentication_body(connector)
            if auth is not None and auth_type(connector) in ("direct", "oauth_token"):
                body["authentication"] = auth
        unsupported = changed - self.capabilities.updatable
        if unsupported:
            raise ProviderError(f"airweave cannot change {', '.join(sorted(unsupported))} in place")
        if not body:
            return self.read(live)
        updated = self.http.json("PATCH", f"source-connections/{live.id}", kind="update", json=body)
        return self._from_detail(updated)

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", f"source-connections/{live.id}", kind="delete", ok_404=True)

    # -- syncs ------------------------------------------------------------------------------
    def _jobs(self, live: LiveConnector, limit: int = 100) -> list[dict[str, Any]]:
        return self.http.json("GET", f"source-connections/{live.id}/jobs", kind="sync_status",
                              params={"limit": limit}) or []

    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        try:
            job = self.http.json("POST", f"source-connections/{live.id}/run", kind="sync")
        except ProviderError as exc:
            if exc.status != 409:
                raise
            # a sync is already running (e.g. the one the create started): that one is ours
            running = [j for j in self._jobs(live, limit=10) if not sync_job(j).done]
            if not running:
                raise
            return sync_job(running[0])
        return sync_job(job)

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        for job in self._jobs(live, limit=1000):
            if str(job["id"]) == job_id:
                return sync_job(job)
        raise ProviderError(f"airweave: sync job {job_id} of {live.name!r} not found", status=404)

    def cancel_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        try:
            self.http.json("POST", f"source-connections/{live.id}/jobs/{job_id}/cancel", kind="sync")
        except ProviderError as exc:
            if exc.status != 409:  # 409: it had already finished; report how it ended
                raise
        return self.get_sync(live, job_id)

    def status(self, live: LiveConnector) -> ConnectorStatus:
        body = self.http.json("GET", f"source-connections/{live.id}", kind="get")
        jobs = self._jobs(live, limit=1)
        return ConnectorStatus(
            status=body.get("status"),
            last_sync=sync_job(jobs[0]) if jobs else None,
            next_run=(body.get("schedule") or {}).get("next_run"),
            auth_url=(body.get("auth") or {}).get("auth_url"),
        )

    # -- target existence (plan time) ---------------------------------------------------------
    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        # the real server lists an unknown collection as [] (providers.md), so an empty list proves
        # nothing: one paged GET /collections (spec: skip/limit <= 1000) answers for all of them
        wanted = set(targets) - self.absent_targets
        known: set[str] = set()
        skip = 0
        while wanted - known:
            page = self.http.json("GET", "collections", kind="list", params={"skip": skip, "limit": 1000})
            known |= {str(c.get("readable_id")) for c in page or [] if isinstance(c, dict)}
            if not isinstance(page, list) or len(page) < 1000:
                break
            skip += len(page)
        return (set(targets) & self.absent_targets) | (wanted - known)


ADAPTER = AirweaveProvider
