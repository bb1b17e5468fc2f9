"""Nango: connections addressed by ``(provider_config_key, connection_id)``.

Mapping (see ``shared/providers.md``): name = ``connection_id``, source = ``provider_config_key``,
scope = connection metadata, syncs = per-sync frequency overrides, credentials = the credentials
object of the upsert (``POST /connections``) with its ``type``. Ownership is the connection tag
``managed-by: connector-reconciler``, with ``managed-by-state: <the state's lineage>`` beside it: a
marked connection in no entry of this state is one it forgot (``state rm``: importable again) when
the lineage is its own, another state's (never taken silently) otherwise.

Sync frequencies are projected *relative to the integration's default* (the ``runs`` of its
deployed sync functions): a sync running at its default is absent from both sides, an override is
``{"every": seconds}``. Nango's status API reports the effective frequency only, so this is the
one reading under which an unchanged manifest plans nothing, a sync removed from ``syncs:``
returns to its default, and syncs the manifest does not name are not reported as drift. Nango
syncs always run on a frequency: the validator refuses ``manual: true`` (there is no manual-only
sync to map it to), so a sync's default is written by leaving it out of ``syncs:`` or by naming
the default interval (which sends nothing). A name the integration does not deploy is refused at
plan time, naming the integration's syncs.

The real server (v0.71.4) makes a new connection's syncs in the background after answering the
create; a frequency set before they exist is ``400 unknown_sync``. So a create waits (bounded,
with backoff) until the syncs it must set exist. A DELETE of a connection already gone is ``400
unknown_connection`` (a retried DELETE whose first answer was lost): that is success. The account
is rate limited (200 requests a minute); :class:`NangoHttp` makes every thread hold back after a
429 until the announced moment, and reads ``Retry-After: 0`` (the server floors to seconds) as
"under a second", not "now".

Credentials come back on every GET and on the upsert's answer: they are removed from the parsed
body before anything else looks at it and never reach a LiveConnector, a log or an error.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from typing import Any, Iterable, Iterator
from urllib.parse import quote

import httpx

from ..errors import NotFound, ProviderError, ReconcileError
from ..http import HttpClient
from ..model import Connector, LiveConnector, Schedule, Secret
from .base import Capabilities, ConnectorStatus, NothingToSync, Provider, SyncJob

OWNER_TAG = "managed-by"
OWNER_VALUE = "connector-reconciler"
STATE_TAG = "managed-by-state"  # the lineage of the state that manages the connection
MAX_TAGS = 10  # Nango's limit per connection (the spec's Tags: maxProperties)
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


def _tags(raw: Any) -> dict[str, str]:
    """Tags as Nango stores them: keys lower-cased (so ``Team`` and ``team`` are one tag)."""
    return {str(k).lower(): v for k, v in (raw or {}).items()} if isinstance(raw, dict) else {}


def _others(tags: dict[str, str]) -> dict[str, str]:
    """The tags a person or another tool put on a connection, without the reconciler's own."""
    return {k: v for k, v in tags.items() if k not in (OWNER_TAG, STATE_TAG)}


def _error_code(exc: ProviderError) -> str | None:
    """Nango's error code in one of our messages (``... -> 400: unknown_connection: ...``)."""
    match = re.search(r"-> \d{3}: ([a-z_]+)", str(exc))
    return match.group(1) if match else None


def _with_unowned(scope: dict[str, Any], unowned: dict[str, Any]) -> dict[str, Any]:
    """``scope`` plus the platform-owned ``scope.*`` values, for a write that replaces all metadata."""
    out = _plain(scope)
    for path, value in sorted(unowned.items()):
        head, _, rest = path.partition(".")
        if head != "scope" or not rest:
            continue
        node = out
        *parents, leaf = rest.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node.setdefault(leaf, _plain(value))
    return out


class NangoHttp(HttpClient):
    """The HTTP client with Nango's rate limit in mind (200 requests a minute per account).

    After a 429 every thread of this adapter holds back until the window reopens, instead of each
    burning its retries into more 429s. Nango floors ``Retry-After`` to whole seconds, so ``0``
    means "under a second": a whole-second value is waited plus half a second (relative, immune to
    clock skew); without the header, until the ``X-RateLimit-Reset`` moment.
    """

    MIN_WAIT = 0.5
    MAX_WAIT = 65.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold_lock = threading.Lock()
        self._hold_until = 0.0  # time.monotonic() before which no request is sent

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        while True:
            with self._hold_lock:
                wait = self._hold_until - time.monotonic()
            if wait <= 0:
                break
            time.sleep(wait)
        response = super()._send(method, path, **kwargs)
        if response.status_code == 429:
            wait = self._throttle_wait(response)
            with self._hold_lock:
                self._hold_until = max(self._hold_until, time.monotonic() + wait)
            response.headers["retry-after"] = f"{wait:.3f}"  # what the retry loop sleeps
        return response

    def _throttle_wait(self, response: httpx.Response) -> float:
        try:
            announced = float(response.headers["retry-after"])
            # Nango floors to whole seconds ("0" = under a second left): wait half a second more
            wait = announced + self.MIN_WAIT if announced.is_integer() else announced
        except (KeyError, ValueError):
            try:
                wait = float(response.headers["x-ratelimit-reset"]) - time.time()
            except (KeyError, ValueError):
                wait = 1.0
        return min(max(wait, 0.0), self.MAX_WAIT)


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
        create_before_destroy=True,  # a replace changes the integration, so the (connection_id, provider_config_key) key differs
        default_url="https://api.nango.dev",
    )
    http_class = NangoHttp
    page_size = 2000  # the real server accepts limit up to 2000 (2001 is 400 invalid_query_params)
    # how long a create waits for Nango to make the new connection's syncs (seconds)
    sync_wait = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # integration -> {sync name: default seconds or None (unreadable)}; None: no such integration
        self._syncs_of: dict[str, dict[str, int | None] | None] = {}
        self._defaults_lock = threading.Lock()
        # connection_id -> tags others put on a connection we own (kept across a replace)
        self._foreign_tags: dict[str, dict[str, str]] = {}

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
        """The overrides to set: syncs whose desired frequency is not the integration's default."""
        known = self._integration_syncs(connector.source) if connector.syncs else {}
        if known is not None:
            unknown = sorted(set(connector.syncs) - set(known))
            if unknown:
                where = f"{connector.location}: " if connector.location else ""
                have = ", ".join(sorted(known)) or "none (no sync scripts are deployed for it)"
                raise ReconcileError(
                    f"{where}connector {connector.name!r}: integration {connector.source!r} has no sync named "
                    f"{', '.join(repr(n) for n in unknown)}; its syncs are: {have}. Write one of those under "
                    "`syncs:` (or deploy the sync to the integration first)")
        defaults = self._sync_defaults(connector.source) if connector.syncs else {}
        out: dict[str, dict[str, int]] = {}
        for name, schedule in connector.syncs.items():
            seconds = schedule_seconds(schedule, name)
            if seconds is not None and seconds != defaults.get(name):
                out[name] = {"every": seconds}
        return out

    def _sync_defaults(self, integration: str) -> dict[str, int]:
        """Each sync's default frequency (``runs``) in seconds, where it can be read."""
        return {k: v for k, v in (self._integration_syncs(integration) or {}).items() if v is not None}

    def _integration_syncs(self, integration: str) -> dict[str, int | None] | None:
        """The integration's deployed syncs and their default seconds; None when the integration does
        not exist (the create names that problem). Cached per run."""
        with self._defaults_lock:
            if integration in self._syncs_of:
                return self._syncs_of[integration]
        found: dict[str, int | None] | None = {}
        page = 0
        while True:
            try:
                body = self.http.json("GET", f"/integrations/{quote(integration, safe='')}/functions", kind="list",
                                      params={"type": "sync", "limit": 100, "page": page})
            except NotFound:
                found = None
                break
            data = body.get("data", []) if isinstance(body, dict) else []
            for fn in data:
                if fn.get("type") == "sync" and fn.get("name"):
                    found[fn["name"]] = parse_frequency(fn.get("runs"))
            total = (body.get("pagination") or {}).get("total", 0) if isinstance(body, dict) else 0
            page += 1
            if not data or page * 100 >= total:
                break
        with self._defaults_lock:
            self._syncs_of[integration] = found
        return found

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
        tags = _tags(item.get("tags"))
        key = f"{pck}/{cid}"
        marked = tags.get(OWNER_TAG) == OWNER_VALUE
        return LiveConnector(
            id=key, key=key, name=cid, source=pck, target=None, fields=fields, complete=True,
            owned=marked, owner=tags.get(STATE_TAG) if marked else None,
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
        seen: set[str] = set()
        page = 0
        while True:
            body = self.http.json("GET", "/connections", kind="list",
                                  params={"limit": self.page_size, "page": page})
            items = body.get("connections", []) if isinstance(body, dict) else []
            for item in items:
                pck = item["provider_config_key"]
                key = f"{pck}/{item['connection_id']}"
                if key in seen:  # newest first: a create between two pages pushes one item onto the next
                    continue
                seen.add(key)
                tags = _tags(item.get("tags"))
                if tags.get(OWNER_TAG) == OWNER_VALUE:
                    foreign = _others(tags)
                    with self._defaults_lock:
                        self._foreign_tags[item["connection_id"]] = foreign
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
        try:
            response = self.http.request("GET", f"/connections/{quote(connection_id, safe='')}", kind="get",
                                         params={"provider_config_key": source}, ok_404=True)
        except ProviderError as exc:
            if exc.status == 400 and _error_code(exc) == "unknown_provider_config":
                return None  # no such integration, so no such connection either
            raise
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

    def _upsert(self, connector: Connector, tags: dict[str, str], kind: str,
                unowned: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = {
            "provider_config_key": connector.source,
            "connection_id": connector.name,
            "credentials": self._credentials(connector),
            # the upsert replaces all metadata: keys the platform owns go along unchanged
            "metadata": _with_unowned(dict(connector.scope), unowned or {}),
            "tags": tags,
        }
        # an upsert keyed by (connection_id, provider_config_key) cannot duplicate when repeated
        response = self.http.request("POST", "/connections", kind=kind, json=payload, safe_to_retry=True)
        body = response.json() if response is not None and response.content else {}
        body.pop("credentials", None)
        return body

    def _set_frequency(self, connector: Connector, sync_name: str, seconds: int | None) -> None:
        payload = {
            "provider_config_key": connector.source, "connection_id": connector.name, "sync_name": sync_name,
            "frequency": format_frequency(seconds) if seconds is not None else None,
        }
        try:
            self.http.request("PUT", "/sync/update-connection-frequency", kind="update", json=payload)
        except ProviderError as exc:
            if exc.status != 400 or _error_code(exc) != "unknown_sync":
                raise
            # not made yet (a connection created moments ago, perhaps by an earlier run): wait, then once more
            self._await_syncs(connector, [sync_name])
            self.http.request("PUT", "/sync/update-connection-frequency", kind="update", json=payload)

    def _await_syncs(self, connector: Connector, names: Iterable[str]) -> None:
        """Wait until Nango has made the connection's syncs ``names`` (it does so in the background
        after a create), polling with backoff for at most ``sync_wait`` seconds."""
        wanted = set(names)
        deadline = time.monotonic() + self.sync_wait
        delay = 0.1
        while True:
            have = {s.get("name") for s in self._statuses(connector.source, connector.name)}
            missing = sorted(wanted - have)
            if not missing:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProviderError(
                    f"{self.config.name} (nango): connection {connector.name!r} was created, but Nango had not made "
                    f"its sync(s) {', '.join(missing)} after {self.sync_wait:.0f} s, so their frequencies are not "
                    "set; run apply again once `reconcile status` lists them")
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)

    def _marked(self, tags: dict[str, str]) -> dict[str, str]:
        """TAGS with the reconciler's marker naming this state. Where a person's tags leave no room
        for the lineage (10 at most), the marker alone: such a connection reads as another state's."""
        if not self.state_lineage:  # used outside a plan (no state known): a lineage tag stays as it was
            return {**tags, OWNER_TAG: OWNER_VALUE}
        out = {**_others(tags), OWNER_TAG: OWNER_VALUE}
        if len(out) < MAX_TAGS:
            out[STATE_TAG] = self.state_lineage
        return out

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        syncs = self._desired_syncs(connector)  # refuses unknown sync names before anything is made
        with self._defaults_lock:
            carried = dict(self._foreign_tags.get(connector.name, {}))  # a replace keeps others' tags
        body = self._upsert(connector, self._marked(carried), kind="create")
        # wait for what comes next to exist: the overrides to set, or every sync a sync_on_apply triggers
        awaited = set(syncs) | (set(self._integration_syncs(connector.source) or {}) if connector.sync_on_apply
                                else set())
        if awaited:
            self._await_syncs(connector, awaited)
        if syncs:
            # only overrides: a sync at its default frequency needs no call
            for name, want in sorted(syncs.items()):
                self._set_frequency(connector, name, want["every"])
        body.setdefault("provider_config_key", connector.source)
        body.setdefault("connection_id", connector.name)
        live = self._live(body, [])
        if syncs:
            live.fields["syncs"] = syncs
        return live

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        tags = _tags(live.extra.get("tags"))
        marked = self._marked(tags)
        desired = self.desired_fields(connector)
        if "credentials" in changed:
            # rotating credentials is the same upsert as the create; it also rewrites metadata and tags
            self._upsert(connector, marked, kind="update", unowned=live.unowned)
        elif tags != marked:
            # adopting a connection someone else (or another state) made: mark it ours, keep their tags
            self.http.request("PATCH", f"/connections/{quote(connector.name, safe='')}", kind="update",
                              params={"provider_config_key": connector.source}, json={"tags": marked})
        if "scope" in changed:
            # set (POST), not merge (PATCH): a merge cannot remove a key, so a key deleted from the
            # manifest would stay live forever and the plan would never converge
            # (values the platform owns, per live.unowned, are sent along so the set keeps them)
            self.http.request("POST", "/connections/metadata", kind="update", safe_to_retry=True, json={
                "connection_id": connector.name, "provider_config_key": connector.source,
                "metadata": _with_unowned(desired.get("scope", {}), live.unowned),
            })
        if "syncs" in changed:
            want = desired.get("syncs", {})
            have = live.fields.get("syncs", {})
            for name in sorted(set(want) | set(have)):
                if name in want:
                    if have.get(name) != want[name]:
                        self._set_frequency(connector, name, want[name]["every"])
                elif f"syncs.{name}" not in live.unowned:  # a frequency set out of band is the platform's
                    self._set_frequency(connector, name, None)  # back to the integration default
        fields = dict(live.fields)
        for key in ("scope", "syncs"):
            if key in changed:
                if key in desired:
                    fields[key] = desired[key]
                else:
                    fields.pop(key, None)
        return LiveConnector(id=live.id, key=live.key, name=live.name, source=live.source, target=None,
                             fields=fields, complete=True, owned=True, owner=marked.get(STATE_TAG),
                             status=live.status,
                             extra={**live.extra, "tags": marked})

    def delete(self, live: LiveConnector) -> None:
        try:
            self.http.request("DELETE", f"/connections/{quote(live.name or '', safe='')}", kind="delete",
                              params={"provider_config_key": live.source}, ok_404=True)
        except ProviderError as exc:
            # Nango's answer for a connection that is gone (our retry after a lost answer, say): done
            if exc.status != 400 or _error_code(exc) != "unknown_connection":
                raise

    # -- syncs ---------------------------------------------------------------------------------
    # Nango has no job ids: a "job" is one trigger of all the connection's syncs. Its id records
    # each sync's last finish before the trigger, so completion is judged on the server's own
    # timestamps (no clock skew between us and Nango).
    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        before = {s["name"]: s.get("finishedAt") for s in self._statuses(live.source, live.name) if s.get("name")}
        if not before:
            # Nango answers a trigger with no syncs 200 and then reports nothing, forever
            raise NothingToSync(f"Nango lists no syncs for connection {live.name!r} of integration {live.source!r} "
                                "(none deployed, or a connection created moments ago)")
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
        # a sync that never ran says SUCCESS without finishedAt: it has no last run to report
        ran = [s for s in statuses if s.get("finishedAt") or s.get("status") == "RUNNING"]
        job = self._aggregate("latest", ran, None) if ran else None
        return ConnectorStatus(status=live.status, last_sync=job, next_run=min(nexts) if nexts else None)

    # -- target existence (plan time) ---------------------------------------------------------
    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        # a connection's container is its integration (containers()): one GET /integrations lists
        # every unique_key of the environment (spec: {"data": [Integration]}, no paging)
        body = self.http.json("GET", "/integrations", kind="list")
        items = body.get("data") if isinstance(body, dict) else None
        known = {str(i.get("unique_key")) for i in items or [] if isinstance(i, dict)}
        return set(targets) - known


ADAPTER = NangoProvider
