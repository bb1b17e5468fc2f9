"""Nango: connections addressed by ``(provider_config_key, connection_id)``.

Mapping (see ``shared/providers.md``): name = ``connection_id``, source = ``provider_config_key``,
scope = connection metadata, syncs = per-sync frequency overrides, credentials = the credentials
object of the upsert (``POST /connections``) with its ``type``. Ownership is the connection tag
``managed-by: connector-reconciler``.

Sync frequencies are projected *relative to the integration's default* (the ``runs`` of its
deployed sync functions): a sync running at its default is absent from both sides, an override is
``{"every": seconds}``. Nango's status API reports the effective frequency only, so this is the
one reading under which an unchanged manifest plans nothing, ``manual: true`` ("reset to the
default") converges, and syncs the manifest does not name are not reported as drift.

Credentials come back on every GET and on the upsert's answer: they are removed from the parsed
body before anything else looks at it and never reach a LiveConnector, a log or an error.
"""
from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any, Iterable, Iterator
from urllib.parse import quote

from ..errors import NotFound, ProviderError, ReconcileError
from ..model import Connector, LiveConnector, Schedule, Secret
from .base import Capabilities, ConnectorStatus, Provider, SyncJob

OWNER_TAG = "managed-by"
OWNER_VALUE = "connector-reconciler"
MIN_FREQUENCY_S = 30  # Nango's floor for a sync frequency

_UNITS = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_FREQ = re.compile(r"^(?:every\s+)?(?:(half(?:\s+an?)?|an?|\d+(?:\.\d+)?)\s*)?([a-z]+)$")


def parse_frequency(text: str | None) -> int | None:
    """Whole seconds for a frequency in Nango's notation (``every hour``, ``every 30 minutes``,
    ``every 1d``); None when it cannot be read."""
    if not isinstance(text, str):
        return None
    match = _FREQ.match(text.strip().lower())
    if not match or match.group(2) not in _UNITS:
        return None
    count = match.group(1)
    if count is None or count in ("a", "an"):
        n = 1.0
    elif count.startswith("half"):
        n = 0.5
    else:
        n = float(count)
    return round(n * _UNITS[match.group(2)])


def format_frequency(seconds: int) -> str:
    """Seconds → the notation Nango accepts, in the largest whole unit (``every 2 hours``)."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            n = seconds // size
            return f"every {n} {unit}{'' if n == 1 else 's'}"
    raise AssertionError("unreachable: every integer is a whole number of seconds")


def cron_interval(cron: str) -> int | None:
    """Seconds when a cron expression is a plain fixed interval Nango can express, else None.

    Only step patterns qualify (``*/15 * * * *``, ``0 */6 * * *``, ``0 * * * *``): a cron pinned
    to a time of day has a phase that Nango's frequencies cannot carry.
    """
    parts = cron.split()
    if len(parts) != 5 or parts[2:] != ["*", "*", "*"]:
        return None
    minute, hour = parts[0], parts[1]
    step = re.fullmatch(r"\*/(\d+)", minute)
    if hour == "*" and (minute == "*" or step):
        n = int(step.group(1)) if step else 1
        return n * 60 if n > 0 and 60 % n == 0 else None
    if not re.fullmatch(r"\d{1,2}", minute) or int(minute) > 59:
        return None
    if hour == "*":
        return 3600
    step = re.fullmatch(r"\*/(\d+)", hour)
    if step and int(step.group(1)) > 0 and 24 % int(step.group(1)) == 0:
        return int(step.group(1)) * 3600
    return None


def schedule_seconds(schedule: Schedule, sync_name: str) -> int | None:
    """A sync's desired frequency in seconds; None for ``manual`` (Nango's default frequency)."""
    form = schedule.form
    if form == "manual":
        return None
    if form == "every":
        seconds = int(schedule.every or 0)
    elif form == "cron":
        seconds = cron_interval(schedule.cron or "") or 0
        if not seconds:
            raise ReconcileError(
                f"nango sync {sync_name!r}: cron {schedule.cron!r} is not a fixed interval; Nango runs syncs at "
                "a frequency, so write `every: <duration>` (or a step cron like '*/30 * * * *')")
    else:
        raise ReconcileError(f"nango sync {sync_name!r}: `continuous` is not available on Nango; use `every:`")
    if seconds < MIN_FREQUENCY_S:
        raise ReconcileError(f"nango sync {sync_name!r}: frequency {seconds}s is below Nango's minimum of 30 seconds")
    return seconds


def _plain(value: Any) -> Any:
    """A JSON-plain deep copy (manifest mappings may be read-only or ordered types)."""
    return json.loads(json.dumps(value))


# what the import call takes per auth mode (the spec's credentials objects)
CREDENTIAL_FIELDS = {"OAUTH2": ("access_token",), "API_KEY": ("apiKey",), "BASIC": ("username", "password")}


class NangoProvider(Provider):
    type = "nango"
    capabilities = Capabilities(
        updatable=frozenset({"scope", "syncs", "credentials"}),
        replace_on=frozenset({"source"}),
        schedule_forms=frozenset(),
        # the list carries metadata and tags; frequencies come from one /sync/status per integration
        list_is_complete=True,
        ownership_marker=True,
        can_sync=True,
        can_cancel_sync=False,  # Nango has no cancel for a running sync execution
        default_url="https://api.nango.dev",
    )
    page_size = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._defaults: dict[str, dict[str, int]] = {}
        self._defaults_lock = threading.Lock()

    # -- wiring -------------------------------------------------------------------------------
    def error_message(self, response) -> str:  # type: ignore[no-untyped-def]
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return super().error_message(response)
        text = str(error.get("code", "error"))
        if error.get("message"):
            text += f": {error['message']}"
        elif isinstance(error.get("errors"), list):
            text += ": " + "; ".join(
                f"{'.'.join(map(str, e.get('path', [])))}: {e.get('message', '')}" for e in error["errors"]
                if isinstance(e, dict))
        return text

    # -- identity and projection -----------------------------------------------------------------
    @classmethod
    def containers(cls, connector: Connector) -> set[str]:
        return {connector.source}  # the integration (provider_config_key) a connection belongs to

    def identity(self, connector: Connector) -> str:
        return f"{connector.source}/{connector.name}"

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        out: dict[str, Any] = {"source": connector.source}
        if connector.scope:
            out["scope"] = _plain(dict(connector.scope))
        syncs = self._desired_syncs(connector)
        if syncs:
            out["syncs"] = syncs
        return out

    def _desired_syncs(self, connector: Connector) -> dict[str, dict[str, int]]:
        defaults = self._sync_defaults(connector.source) if connector.syncs else {}
        out: dict[str, dict[str, int]] = {}
        for name, schedule in connector.syncs.items():
            seconds = schedule_seconds(schedule, name)
            if seconds is not None and seconds != defaults.get(name):
                out[name] = {"every": seconds}
        return out

    def _sync_defaults(self, integration: str) -> dict[str, int]:
        """Each sync's default frequency (``runs``) for an integration; cached per run."""
        with self._defaults_lock:
            cached = self._defaults.get(integration)
        if cached is not None:
            return cached
        defaults: dict[str, int] = {}
        page = 0
        while True:
            try:
                body = self.http.json("GET", f"/integrations/{quote(integration, safe='')}/functions", kind="list",
                                      params={"type": "sync", "limit": 100, "page": page})
            except NotFound:
                break  # unknown integration: the create names the problem; nothing to normalise
            data = body.get("data", []) if isinstance(body, dict) else []
            for fn in data:
                seconds = parse_frequency(fn.get("runs"))
                if fn.get("type") == "sync" and seconds is not None:
                    defaults[fn["name"]] = seconds
            total = (body.get("pagination") or {}).get("total", 0) if isinstance(body, dict) else 0
            page += 1
            if not data or page * 100 >= total:
                break
        with self._defaults_lock:
            self._defaults[integration] = defaults
        return defaults

    def _live_syncs(self, integration: str, statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        defaults = self._sync_defaults(integration) if statuses else {}
        out: dict[str, dict[str, Any]] = {}
        for sync in statuses:
            name, raw = sync.get("name"), sync.get("frequency")
            if not name:
                continue
            seconds = parse_frequency(raw)
            if seconds is None:
                out[name] = {"frequency": raw}  # unreadable: show it as drift rather than guess
            elif seconds != defaults.get(name):
                out[name] = {"every": seconds}
        return out

    def _live(self, item: dict[str, Any], statuses: list[dict[str, Any]]) -> LiveConnector:
        pck, cid = item["provider_config_key"], item["connection_id"]
        fields: dict[str, Any] = {"source": pck}
        if item.get("metadata"):
            fields["scope"] = item["metadata"]
        syncs = self._live_syncs(pck, statuses)
        if syncs:
            fields["syncs"] = syncs
        tags = dict(item.get("tags") or {})
        key = f"{pck}/{cid}"
        return LiveConnector(
            id=key, key=key, name=cid, source=pck, target=None, fields=fields, complete=True,
            owned=tags.get(OWNER_TAG) == OWNER_VALUE,
            status="error" if item.get("errors") else "active",
            extra={"tags": tags, "provider": item.get("provider"), "nango_id": item.get("id"),
                   "created": item.get("created") or item.get("created_at")},
        )

    # -- reads ---------------------------------------------------------------------------------
    def _statuses(self, integration: str, connection_id: str | None = None) -> list[dict[str, Any]]:
        params = {"provider_config_key": integration, "syncs": "*"}
        if connection_id is not None:
            params["connection_id"] = connection_id
        try:
            body = self.http.json("GET", "/sync/status", kind="list" if connection_id is None else "get",
                                  params=params)
        except ProviderError as exc:
            if exc.status in (400, 404):  # integration without syncs, or gone meanwhile
                return []
            raise
        return list(body.get("syncs") or []) if isinstance(body, dict) else []

    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        by_integration: dict[str, dict[str, list[dict[str, Any]]]] = {}
        page = 0
        while True:
            body = self.http.json("GET", "/connections", kind="list",
                                  params={"limit": self.page_size, "page": page})
            items = body.get("connections", []) if isinstance(body, dict) else []
            for item in items:
                pck = item["provider_config_key"]
                if pck not in by_integration:
                    # one status call covers every connection of the integration
                    grouped: dict[str, list[dict[str, Any]]] = {}
                    for sync in self._statuses(pck):
                        grouped.setdefault(sync.get("connection_id", ""), []).append(sync)
                    by_integration[pck] = grouped
                yield self._live(item, by_integration[pck].get(item["connection_id"], []))
            if len(items) < self.page_size:
                return
            page += 1

    def _get(self, source: str, connection_id: str) -> dict[str, Any] | None:
        response = self.http.request("GET", f"/connections/{quote(connection_id, safe='')}", kind="get",
                                     params={"provider_config_key": source}, ok_404=True)
        if response is None:
            return None
        body = response.json()
        creds = body.pop("credentials", None)  # live secrets: dropped before anything else sees them
        if isinstance(creds, dict) and isinstance(creds.get("type"), str):
            body["credentials_type"] = creds["type"]  # the auth method is not a secret
        return body

    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        body = self._get(live.source, live.name or "") or {}
        kind = body.get("credentials_type")
        fields = CREDENTIAL_FIELDS.get(kind or "")
        return {"type": kind, **{f: None for f in fields}} if fields else {}

    def lookup(self, connector: Connector) -> LiveConnector | None:
        body = self._get(connector.source, connector.name)
        if body is None:
            return None
        return self._live(body, self._statuses(connector.source, connector.name))

    def read(self, live: LiveConnector) -> LiveConnector:
        return live

    # -- writes --------------------------------------------------------------------------------
    @staticmethod
    def _credentials(connector: Connector) -> dict[str, Any]:
        creds = {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in connector.credentials.items()}
        if not creds.get("type"):
            raise ReconcileError(
                f"nango connector {connector.name!r}: credentials need a `type` (OAUTH2 with access_token, "
                "API_KEY with apiKey, BASIC with username and password)")
        return creds

    def _upsert(self, connector: Connector, tags: dict[str, str], kind: str) -> dict[str, Any]:
        payload = {
            "provider_config_key": connector.source,
            "connection_id": connector.name,
            "credentials": self._credentials(connector),
            "metadata": _plain(dict(connector.scope)),
            "tags": tags,
        }
        # an upsert keyed by (connection_id, provider_config_key) cannot duplicate when repeated
        response = self.http.request("POST", "/connections", kind=kind, json=payload, safe_to_retry=True)
        body = response.json() if response is not None and response.content else {}
        body.pop("credentials", None)
        return body

    def _set_frequency(self, connector: Connector, sync_name: str, seconds: int | None) -> None:
        self.http.request("PUT", "/sync/update-connection-frequency", kind="update", json={
            "provider_config_key": connector.source, "connection_id": connector.name, "sync_name": sync_name,
            "frequency": format_frequency(seconds) if seconds is not None else None,
        })

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        body = self._upsert(connector, {OWNER_TAG: OWNER_VALUE}, kind="create")
        for name, schedule in connector.syncs.items():
            seconds = schedule_seconds(schedule, name)
            if seconds is not None:
                self._set_frequency(connector, name, seconds)
        body.setdefault("provider_config_key", connector.source)
        body.setdefault("connection_id", connector.name)
        live = self._live(body, [])
        syncs = self._desired_syncs(connector)
        if syncs:
            live.fields["syncs"] = syncs
        return live

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        tags = dict(live.extra.get("tags") or {})
        marked = {**tags, OWNER_TAG: OWNER_VALUE}
        desired = self.desired_fields(connector)
        if "credentials" in changed:
            # rotating credentials is the same upsert as the create; it also rewrites metadata and tags
            self._upsert(connector, marked, kind="update")
        elif tags != marked:
            # adopting a connection someone else made: add our marker, keep their tags
            self.http.request("PATCH", f"/connections/{quote(connector.name, safe='')}", kind="update",
                              params={"provider_config_key": connector.source}, json={"tags": marked})
        if "scope" in changed:
            # set (POST), not merge (PATCH): a merge cannot remove a key, so a key deleted from the
            # manifest would stay live forever and the plan would never converge
            self.http.request("POST", "/connections/metadata", kind="update", safe_to_retry=True, json={
                "connection_id": connector.name, "provider_config_key": connector.source,
                "metadata": desired.get("scope", {}),
            })
        if "syncs" in changed:
            want = desired.get("syncs", {})
            have = live.fields.get("syncs", {})
            for name in sorted(set(want) | set(have)):
                if name in want:
                    if have.get(name) != want[name]:
                        self._set_frequency(connector, name, want[name]["every"])
                else:
                    self._set_frequency(connector, name, None)  # back to the integration default
        fields = dict(live.fields)
        for key in ("scope", "syncs"):
            if key in changed:
                if key in desired:
                    fields[key] = desired[key]
                else:
                    fields.pop(key, None)
        return LiveConnector(id=live.id, key=live.key, name=live.name, source=live.source, target=None,
                             fields=fields, complete=True, owned=True, status=live.status,
                             extra={**live.extra, "tags": marked})

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", f"/connections/{quote(live.name or '', safe='')}", kind="delete",
                          params={"provider_config_key": live.source}, ok_404=True)

    # -- syncs ---------------------------------------------------------------------------------
    # Nango has no job ids: a "job" is one trigger of all the connection's syncs. Its id records
    # each sync's last finish before the trigger, so completion is judged on the server's own
    # timestamps (no clock skew between us and Nango).
    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        before = {s["name"]: s.get("finishedAt") for s in self._statuses(live.source, live.name) if s.get("name")}
        # a repeated trigger only asks for a run that is already pending: no harm, so retry it
        self.http.request("POST", "/sync/trigger", kind="sync", safe_to_retry=True, json={
            "provider_config_key": live.source, "connection_id": live.name, "syncs": [],
        })
        job_id = base64.urlsafe_b64encode(json.dumps(before, sort_keys=True).encode()).decode().rstrip("=")
        return SyncJob(id=job_id, status="queued")

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        try:
            before = json.loads(base64.urlsafe_b64decode(job_id + "=" * (-len(job_id) % 4)))
        except ValueError as exc:
            raise ReconcileError(f"nango: {job_id!r} is not a sync job id from this reconciler") from exc
        return self._aggregate(job_id, self._statuses(live.source, live.name), before)

    @staticmethod
    def _aggregate(job_id: str, statuses: list[dict[str, Any]], before: dict[str, Any] | None) -> SyncJob:
        records = sum(int(v) for s in statuses for v in (s.get("recordCount") or {}).values()
                      if isinstance(v, (int, float)))
        finished = [s.get("finishedAt") for s in statuses if s.get("finishedAt")]
        done = [s for s in statuses if s.get("status") in ("SUCCESS", "ERROR")
                and (before is None or s.get("finishedAt") != before.get(s.get("name")))]
        failed = [s["name"] for s in done if s.get("status") == "ERROR"]
        if statuses and len(done) == len(statuses):
            status = "failed" if failed else "completed"
        elif any(s.get("status") == "RUNNING" for s in statuses):
            status = "running"
        elif any(s.get("status") == "STOPPED" for s in statuses):
            status = "cancelled"
        else:
            status = "queued"
        return SyncJob(id=job_id, status=status, progress={"records": records},
                       error=f"sync failed: {', '.join(failed)}" if failed and status == "failed" else None,
                       finished_at=max(finished) if finished and status in ("completed", "failed") else None)

    def status(self, live: LiveConnector) -> ConnectorStatus:
        statuses = self._statuses(live.source, live.name)
        nexts = [s["nextScheduledSyncAt"] for s in statuses if s.get("nextScheduledSyncAt")]
        job = self._aggregate("latest", statuses, None) if statuses else None
        return ConnectorStatus(status=live.status, last_sync=job, next_run=min(nexts) if nexts else None)


ADAPTER = NangoProvider
