"""A local Nango: the current ``/connections`` API, metadata, per-sync frequency, sync trigger/status.

Shapes follow ``specs/nango-openapi.yaml`` field for field; status codes and error codes follow the
real server (v0.71.4, run on loopback; ``shared/providers.md`` "Real-server facts"), which differs
from the spec in places (``POST /connections`` answers 201). Errors use Nango's ``StdError`` body,
``{"error": {"code": ..., "message": ..., "errors": [...]}}``. Integrations named by
``config.targets`` are pre-created; each gets the auth mode and syncs of its provider's catalogue
entry (the provider is guessed from the unique key's prefix, e.g. ``github-prod`` → ``github``),
because real Nango's syncs come from scripts deployed per integration and a connection only has
those.

Like the real server, a new connection's syncs are created in the background after the create has
answered (``config.sync_creation_delay``), and they do not run until triggered: a sync that never
ran reports ``SUCCESS`` without ``finishedAt``. ``config.rate_limit`` turns on the per-account
limit (real: 200 a minute) with its 429, ``Retry-After`` and ``X-RateLimit-*`` headers.
"""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from .base import ADMIN_PREFIX, EmulatorConfig, JobClock, JSONResponse, Store, new_id, now_iso

# provider -> (auth mode, [(sync name, default frequency, model)]); the first matching prefix wins
CATALOGUE: list[tuple[str, str, list[tuple[str, str, str]]]] = [
    ("google-drive", "OAUTH2", [("documents", "every hour", "Document")]),
    ("github", "OAUTH2", [("issues", "every hour", "GithubIssue"),
                          ("pull-requests", "every 6 hours", "GithubPullRequest")]),
    ("slack", "OAUTH2", [("messages", "every 30 minutes", "SlackMessage"), ("channels", "every day", "SlackChannel"),
                         ("users", "every day", "SlackUser")]),
    ("notion", "OAUTH2", [("pages", "every 6 hours", "NotionPage")]),
    ("hubspot", "OAUTH2", [("contacts", "every hour", "HubspotContact")]),
    ("posthog", "API_KEY", [("events", "every day", "PosthogEvent")]),
    ("freshdesk", "BASIC", [("tickets", "every hour", "FreshdeskTicket")]),
    ("zoom", "OAUTH2", []),  # an integration with no sync scripts deployed
]
GENERIC_AUTH = "OAUTH2"
GENERIC_SYNCS = [("records", "every day", "Record")]

DEFAULT_PAGE_MAX = 2000  # the real server: limit=2000 is accepted, 2001 is 400 invalid_query_params
MIN_FREQUENCY_S = 30.0
MAX_TAGS = 10
MAX_TAG_VALUE = 255

# credential type -> (required fields, allowed fields), from the spec's credential schemas
CREDENTIAL_TYPES: dict[str, tuple[set[str], set[str]]] = {
    "OAUTH2": ({"access_token"}, {"access_token", "refresh_token", "expires_at", "config_override"}),
    "OAUTH1": ({"oauth_token", "oauth_token_secret"}, {"oauth_token", "oauth_token_secret"}),
    "OAUTH2_CC": ({"client_id", "client_secret", "token"}, {"client_id", "client_secret", "token", "expires_at"}),
    "BASIC": ({"username", "password"}, {"username", "password"}),
    "API_KEY": ({"apiKey"}, {"apiKey"}),
    "NONE": (set(), set()),
    "TBA": ({"token_id", "token_secret", "config_override"}, {"token_id", "token_secret", "config_override"}),
    "APP": ({"app_id", "installation_id"}, {"app_id", "installation_id"}),
}

_UNITS = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_FREQ = re.compile(r"^(?:every\s+)?(?:(half(?:\s+an?)?|an?|\d+(?:\.\d+)?)\s*)?([a-z]+)$")


def parse_frequency(text: str) -> float | None:
    """Seconds for Nango's frequency notation (``every hour``, ``every 30 minutes``, ``1d``)."""
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
    return n * _UNITS[match.group(2)]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message or code)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code}
        if self.message:
            body["message"] = self.message
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse({"error": body}, status_code=self.status)


def invalid(kind: str, problems: list[tuple[list[str | int], str]]) -> ApiError:
    """Nango's zod-style validation error: 400 with one entry per problem."""
    return ApiError(400, kind, "; ".join(f"{'.'.join(map(str, p)) or '(body)'}: {m}" for p, m in problems),
                    [{"code": "custom", "message": m, "path": p} for p, m in problems])


def _catalogue_for(unique_key: str) -> tuple[str, str, list[tuple[str, str, str]]]:
    for provider, auth_mode, syncs in CATALOGUE:
        if unique_key == provider or unique_key.startswith(provider + "-"):
            return provider, auth_mode, syncs
    return unique_key.split("-")[0] or unique_key, GENERIC_AUTH, GENERIC_SYNCS


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def answered_frequency(text: str) -> str:
    """What the real frequency PUT answers for a frequency it was sent: the interval without its
    ``every`` (``"every 2 hours"`` → ``"2 hours"``), as ``getInterval(...).interval`` gives it."""
    return re.sub(r"^\s*every\s+", "", text, flags=re.I).strip()


class RateLimiter:
    """Per-account fixed windows, like ``rate-limiter-flexible`` (points per ``duration``, the
    window opening at its first request). ``consume`` answers (allowed, remaining, seconds to reset)."""

    def __init__(self, points: int, window: float) -> None:
        self.points, self.window = points, window
        self.lock = threading.Lock()
        self.windows: dict[str, tuple[float, int]] = {}

    def consume(self, key: str) -> tuple[bool, int, float]:
        now = time.monotonic()
        with self.lock:
            start, used = self.windows.get(key, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            used += 1
            self.windows[key] = (start, used)
        return used <= self.points, max(0, self.points - used), max(0.0, start + self.window - now)


def _check_tags(tags: Any, path: list[str | int]) -> tuple[dict[str, str] | None, list[tuple[list[str | int], str]]]:
    problems: list[tuple[list[str | int], str]] = []
    if not isinstance(tags, dict):
        return None, [(path, "Expected object")]
    if len(tags) > MAX_TAGS:
        problems.append((path, f"Too many tags: at most {MAX_TAGS}"))
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(value, str):
            problems.append((path + [key], "Expected string"))
        elif len(value) > MAX_TAG_VALUE:
            problems.append((path + [key], f"String must contain at most {MAX_TAG_VALUE} character(s)"))
        else:
            out[key.lower()] = value  # the spec: keys are normalised to lowercase
    return out, problems


def _check_credentials(creds: Any, auth_mode: str | None = None) -> list[tuple[list[str | int], str]]:
    if not isinstance(creds, dict):
        return [(["credentials"], "Required" if creds is None else "Expected object")]
    ctype = creds.get("type")
    if ctype not in CREDENTIAL_TYPES:
        return [(["credentials", "type"], f"Invalid enum value. Expected {' | '.join(CREDENTIAL_TYPES)}")]
    if auth_mode is not None and ctype != auth_mode:
        # the real server: a credential whose type is not the integration's auth mode is 400 invalid_body
        return [(["credentials", "type"], f"The integration's auth mode is {auth_mode}, not {ctype}")]
    required, allowed = CREDENTIAL_TYPES[ctype]
    problems: list[tuple[list[str | int], str]] = []
    for name in sorted(required - creds.keys()):
        problems.append((["credentials", name], "Required"))
    for name in sorted(creds.keys() - allowed - {"type"}):
        problems.append((["credentials", name], f"Unrecognized key for {ctype} credentials"))
    for name in allowed & creds.keys():
        if name != "config_override" and not isinstance(creds[name], str):
            problems.append((["credentials", name], "Expected string"))
    return problems


class Nango:
    """The emulator's state and handlers; one instance per app."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = JobClock(config.sync_duration, config.sync_fail)
        self.page_max = config.page_limit_max or DEFAULT_PAGE_MAX
        self.limiter = RateLimiter(config.rate_limit, config.rate_limit_window) if config.rate_limit else None
        self.throttled = 0  # 429s answered, for tests (GET /_emulator/throttled)
        self.store = Store("nango", config.data_dir, {"next_id": 1, "integrations": {}, "connections": {}})
        with self.store.lock:
            for key in config.targets:
                if key not in self.store.data["integrations"]:
                    self._add_integration(key)
            self.store.save()

    # -- helpers ------------------------------------------------------------------------------
    def _add_integration(self, key: str) -> None:
        provider, auth_mode, syncs = _catalogue_for(key)
        stamp = now_iso()
        self.store.data["integrations"][key] = {
            "unique_key": key, "display_name": provider.replace("-", " ").title(), "provider": provider,
            "auth_mode": auth_mode,
            "logo": f"https://app.nango.dev/images/template-logos/{provider}.svg",
            "created_at": stamp, "updated_at": stamp, "forward_webhooks": True,
            "syncs": [{"id": i + 1, "name": n, "runs": f, "model": m} for i, (n, f, m) in enumerate(syncs)],
        }

    def _next_id(self) -> int:
        value = self.store.data["next_id"]
        self.store.data["next_id"] = value + 1
        return value

    def _integration(self, key: str, status: int = 400, code: str = "unknown_provider_config") -> dict[str, Any]:
        integration = self.store.data["integrations"].get(key)
        if integration is None:
            raise ApiError(status, code,
                           "Provider config not found for the given provider config key. Please make sure the "
                           "provider config exists in the Nango dashboard.")
        return integration

    def _connection(self, connection_id: str, pck: str | None, status: int = 404,
                    code: str = "unknown_connection") -> dict[str, Any]:
        conn = self.store.data["connections"].get(f"{pck}/{connection_id}")
        if conn is None:
            raise ApiError(status, code,
                           f"Connection not found: connection_id={connection_id!r}, provider_config_key={pck!r}")
        return conn

    @staticmethod
    def _syncs(conn: dict[str, Any]) -> dict[str, Any]:
        """The connection's syncs that exist yet (made in the background after the create)."""
        return conn["syncs"] if time.time() >= conn.get("syncs_ready_at", 0) else {}

    @staticmethod
    async def _body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(400, "invalid_body", "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid("invalid_body", [([], "Expected object")])
        return body

    def _authorised(self, request: Request) -> str:
        """The account's key. Real secret keys are UUIDs; the emulator's own ``api_key`` is accepted
        whatever its shape (tests and the sandbox use readable ones), any other key is judged as the
        real server does: not ``Bearer <uuid>`` → invalid_secret_key_format, else unknown_account."""
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing_auth_header",
                           "Authentication failed. The request is missing the Authorization header.")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme == "Bearer" and token == self.config.api_key:
            return token
        if scheme != "Bearer" or not _UUID.match(token):
            raise ApiError(401, "invalid_secret_key_format",
                           "Authentication failed. The provided secret key is not a UUID v4.")
        raise ApiError(401, "unknown_account", "Authentication failed. The provided secret key is invalid.")

    @staticmethod
    def _public_credentials(creds: dict[str, Any], with_refresh: bool) -> dict[str, Any]:
        out = {k: v for k, v in creds.items() if k != "config_override"}
        if creds["type"] == "OAUTH2":
            if not with_refresh:
                out.pop("refresh_token", None)
            out["raw"] = {"access_token": creds["access_token"], "token_type": "bearer"}
        elif creds["type"] in ("OAUTH1", "OAUTH2_CC", "APP"):
            out["raw"] = {}
        return out

    def _full(self, conn: dict[str, Any], with_refresh: bool = False) -> dict[str, Any]:
        return {
            "id": conn["id"], "connection_id": conn["connection_id"],
            "provider_config_key": conn["provider_config_key"], "provider": conn["provider"],
            "errors": list(conn["errors"]), "end_user": None, "metadata": dict(conn["metadata"]),
            "connection_config": dict(conn["connection_config"]), "tags": dict(conn["tags"]),
            "created_at": conn["created_at"], "updated_at": conn["updated_at"],
            "last_fetched_at": conn["last_fetched_at"],
            "webhook_url_override": conn.get("webhook_url_override"),
            "credentials": self._public_credentials(conn["credentials"], with_refresh),
        }

    @staticmethod
    def _summary(conn: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": conn["id"], "connection_id": conn["connection_id"], "provider": conn["provider"],
            "provider_config_key": conn["provider_config_key"], "created": conn["created_at"],
            "metadata": dict(conn["metadata"]) if conn["metadata"] else None, "tags": dict(conn["tags"]),
            "errors": list(conn["errors"]), "end_user": None,
            "webhook_url_override": conn.get("webhook_url_override"),
        }

    # -- connections --------------------------------------------------------------------------
    async def list_connections(self, request: Request) -> JSONResponse:
        q = request.query_params
        problems: list[tuple[list[str | int], str]] = []
        limit = page = None
        for name in ("limit", "page"):
            if name in q:
                try:
                    value = int(q[name])
                except ValueError:
                    problems.append(([name], "Expected number"))
                    continue
                low = 1 if name == "limit" else 0
                if value < low or (name == "limit" and value > self.page_max):
                    problems.append(([name], f"Number must be between {low} and {self.page_max}"
                                     if name == "limit" else "Number must be greater than or equal to 0"))
                if name == "limit":
                    limit = value
                else:
                    page = value
        if problems:
            raise invalid("invalid_query_params", problems)
        tag_filter = {}
        for key, value in q.multi_items():
            match = re.fullmatch(r"tags\[(.+)\]", key)
            if match:
                tag_filter[match.group(1).lower()] = value
        with self.store.lock:
            # newest first, as the real server lists them
            items = sorted(self.store.data["connections"].values(), key=lambda c: c["id"], reverse=True)
            if "connectionId" in q:
                items = [c for c in items if c["connection_id"] == q["connectionId"]]
            if q.get("search"):
                items = [c for c in items if q["search"].lower() in c["connection_id"].lower()]
            items = [c for c in items if all(c["tags"].get(k) == v for k, v in tag_filter.items())]
            if limit is not None:
                start = (page or 0) * limit
                items = items[start:start + limit]
            return JSONResponse({"connections": [self._summary(c) for c in items]})

    async def upsert_connection(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        problems: list[tuple[list[str | int], str]] = []
        pck = body.get("provider_config_key")
        if not isinstance(pck, str) or not pck:
            problems.append((["provider_config_key"], "Required" if pck is None else "Expected string"))
        connection_id = body.get("connection_id", None)
        if connection_id is not None and (not isinstance(connection_id, str) or not connection_id):
            problems.append((["connection_id"], "Expected non-empty string"))
        for name in ("metadata", "connection_config"):
            if name in body and not isinstance(body[name], dict):
                problems.append(([name], "Expected object"))
        tags = None
        if "tags" in body:
            tags, tag_problems = _check_tags(body["tags"], ["tags"])
            problems += tag_problems
        if problems:
            raise invalid("invalid_body", problems)
        with self.store.lock:
            integration = self._integration(pck, 404, "not_found")
            problems = _check_credentials(body.get("credentials"), integration.get("auth_mode"))
            if problems:
                raise invalid("invalid_body", problems)
            connection_id = connection_id or new_id()
            key = f"{pck}/{connection_id}"
            stamp = now_iso()
            conn = self.store.data["connections"].get(key)
            if conn is None:
                conn = {
                    "id": self._next_id(), "connection_id": connection_id, "provider_config_key": pck,
                    "provider": integration["provider"], "created_at": stamp, "metadata": {},
                    "connection_config": {}, "tags": {}, "errors": [], "syncs": {},
                    "webhook_url_override": None,
                    # the real server makes the syncs after answering; until then they do not exist
                    "syncs_ready_at": time.time() + self.config.sync_creation_delay,
                }
                for sync in integration["syncs"]:
                    # no job: a sync that never ran reports SUCCESS without finishedAt
                    conn["syncs"][sync["name"]] = {"id": new_id(), "frequency": None, "jobs": []}
                self.store.data["connections"][key] = conn
            conn["credentials"] = dict(body["credentials"])
            for name in ("metadata", "connection_config"):
                if name in body:
                    conn[name] = dict(body[name])
            if tags is not None:
                conn["tags"] = tags
            conn["updated_at"] = conn["last_fetched_at"] = stamp
            self.store.save()
            return JSONResponse(self._full(conn), status_code=201)

    def _pck_query(self, request: Request) -> str:
        pck = request.query_params.get("provider_config_key")
        if not pck:
            raise invalid("invalid_query_params", [(["provider_config_key"], "Required")])
        return pck

    async def get_connection(self, request: Request) -> JSONResponse:
        pck = self._pck_query(request)
        with_refresh = request.query_params.get("refresh_token") == "true"
        with self.store.lock:
            self._integration(pck)
            conn = self._connection(request.path_params["connection_id"], pck, 404, "not_found")
            conn["last_fetched_at"] = now_iso()
            self.store.save()
            return JSONResponse(self._full(conn, with_refresh))

    async def patch_connection(self, request: Request) -> JSONResponse:
        pck = self._pck_query(request)
        body = await self._body(request)
        problems: list[tuple[list[str | int], str]] = []
        tags = None
        if "tags" in body:
            tags, problems = _check_tags(body["tags"], ["tags"])
        if "webhook_url_override" in body and not isinstance(body["webhook_url_override"], str):
            problems.append((["webhook_url_override"], "Expected string"))
        unknown = sorted(body.keys() - {"tags", "webhook_url_override", "end_user"})
        problems += [([k], "Unrecognized key") for k in unknown]
        if problems:
            raise invalid("invalid_body", problems)
        with self.store.lock:
            self._integration(pck)
            conn = self._connection(request.path_params["connection_id"], pck, 404, "not_found")
            if tags is not None:
                conn["tags"] = tags
            if "webhook_url_override" in body:
                conn["webhook_url_override"] = body["webhook_url_override"] or None
            conn["updated_at"] = now_iso()
            self.store.save()
        return JSONResponse({"success": True})

    async def delete_connection(self, request: Request) -> JSONResponse:
        pck = self._pck_query(request)
        with self.store.lock:
            self._integration(pck)
            # the real server: a connection that is gone is 400 unknown_connection (not 404)
            conn = self._connection(request.path_params["connection_id"], pck, 400)
            del self.store.data["connections"][f"{pck}/{conn['connection_id']}"]
            self.store.save()
        return JSONResponse({"success": True})

    async def metadata(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        problems: list[tuple[list[str | int], str]] = []
        ids = body.get("connection_id")
        if isinstance(ids, str) and ids:
            id_list = [ids]
        elif isinstance(ids, list) and ids and all(isinstance(i, str) and i for i in ids):
            id_list = list(ids)
        else:
            id_list = []
            problems.append((["connection_id"], "Expected a connection id or a non-empty array of them"))
        pck = body.get("provider_config_key")
        if not isinstance(pck, str) or not pck:
            problems.append((["provider_config_key"], "Required" if pck is None else "Expected string"))
        if not isinstance(body.get("metadata"), dict):
            problems.append((["metadata"], "Required" if "metadata" not in body else "Expected object"))
        if problems:
            raise invalid("invalid_body", problems)
        with self.store.lock:
            # all or nothing: one unknown id aborts the whole call before any change
            conns = [self._connection(cid, pck) for cid in id_list]
            for conn in conns:
                if request.method == "POST":
                    conn["metadata"] = dict(body["metadata"])
                else:
                    conn["metadata"] = {**conn["metadata"], **body["metadata"]}
                conn["updated_at"] = now_iso()
            self.store.save()
        return JSONResponse({"connection_id": ids, "provider_config_key": pck, "metadata": body["metadata"]},
                            status_code=201 if request.method == "POST" else 200)

    # -- integrations ------------------------------------------------------------------------
    @staticmethod
    def _integration_view(integration: dict[str, Any]) -> dict[str, Any]:
        return {k: integration[k] for k in ("unique_key", "display_name", "provider", "logo", "created_at",
                                            "updated_at", "forward_webhooks")}

    async def list_integrations(self, request: Request) -> JSONResponse:
        with self.store.lock:
            return JSONResponse({"data": [self._integration_view(i)
                                          for i in self.store.data["integrations"].values()]})

    async def list_functions(self, request: Request) -> JSONResponse:
        q = request.query_params
        try:
            page = int(q.get("page", 0))
            limit = int(q.get("limit", 20))
        except ValueError:
            raise invalid("invalid_query_params", [(["limit"], "Expected number")]) from None
        if page < 0 or not 1 <= limit <= 100:
            raise invalid("invalid_query_params", [(["limit"], "Number must be between 1 and 100")])
        with self.store.lock:
            integration = self._integration(request.path_params["unique_key"], 404, "not_found")
            functions = [] if q.get("type") not in (None, "sync") else [
                {"name": s["name"], "type": "sync", "returns": [s["model"]], "json_schema": None,
                 "runs": s["runs"], "auto_start": True, "track_deletes": False, "id": s["id"], "enabled": True,
                 "last_deployed": integration["created_at"], "source": "catalog"}
                for s in integration["syncs"] if not q.get("search") or q["search"].lower() in s["name"].lower()]
        return JSONResponse({"data": functions[page * limit:(page + 1) * limit],
                             "pagination": {"total": len(functions), "page": page, "limit": limit}})

    # -- syncs -------------------------------------------------------------------------------
    async def update_frequency(self, request: Request) -> JSONResponse:
        if request.query_params:
            raise invalid("invalid_query_params", [([k], "Unrecognized key") for k in request.query_params])
        body = await self._body(request)
        problems: list[tuple[list[str | int], str]] = []
        for name in ("provider_config_key", "connection_id", "sync_name"):
            if not isinstance(body.get(name), str) or not body[name]:
                problems.append(([name], "Required" if name not in body else "Expected string"))
        if "frequency" not in body:
            problems.append((["frequency"], "Required"))
        freq = body.get("frequency")
        if freq is not None:
            seconds = parse_frequency(freq) if isinstance(freq, str) else None
            if seconds is None:
                problems.append((["frequency"], "Invalid frequency: use the ms notation, e.g. 'every hour'"))
            elif seconds < MIN_FREQUENCY_S:
                problems.append((["frequency"], "Frequency must be at least 30 seconds"))
        unknown = sorted(body.keys() - {"provider_config_key", "connection_id", "sync_name", "sync_variant",
                                        "frequency"})
        problems += [([k], "Unrecognized key") for k in unknown]
        if problems:
            raise invalid("invalid_body", problems)
        with self.store.lock:
            # the real server looks the connection up first (an unknown integration finds none either)
            conn = self._connection(body["connection_id"], body["provider_config_key"], 400)
            integration = self.store.data["integrations"][body["provider_config_key"]]
            sync = self._syncs(conn).get(body["sync_name"])
            if sync is None:
                raise ApiError(400, "unknown_sync")
            sync["frequency"] = freq
            self.store.save()
            default = next(s["runs"] for s in integration["syncs"] if s["name"] == body["sync_name"])
        # a frequency set answers as the server parsed it ("2 hours"); a reset answers the script's `runs`
        return JSONResponse({"frequency": answered_frequency(freq) if freq is not None else default})

    async def trigger(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        problems: list[tuple[list[str | int], str]] = []
        if "syncs" not in body:
            problems.append((["syncs"], "Required"))
        elif not isinstance(body["syncs"], list) or not all(
                isinstance(s, str) or (isinstance(s, dict) and isinstance(s.get("name"), str)) for s in body["syncs"]):
            problems.append((["syncs"], "Each sync must be either a string or a { name: string, variant: string } "
                                        "object"))
        for name in ("provider_config_key", "connection_id"):
            if name in body and not isinstance(body[name], str):
                problems.append(([name], "Expected string"))
        if problems:
            raise invalid("invalid_body", problems)
        pck = body.get("provider_config_key") or request.headers.get("provider-config-key")
        if not pck:
            raise ApiError(400, "missing_provider_config_key",
                           "Missing provider_config_key. Provide it in the body or headers.")
        cid = body.get("connection_id") or request.headers.get("connection-id")
        names = [s["name"] if isinstance(s, dict) else s.split("::")[0] for s in body["syncs"]]
        with self.store.lock:
            self._integration(pck)
            if cid:
                conns = [self._connection(cid, pck, 404)]
            else:
                conns = [c for c in self.store.data["connections"].values() if c["provider_config_key"] == pck]
            for conn in conns:
                syncs = self._syncs(conn)
                missing = [n for n in names if n not in syncs]
                if missing:
                    raise ApiError(400, "no_syncs_found", f"No syncs found given the inputs: {', '.join(missing)}")
                # an empty list means every sync the connection has; none at all is still a success
                for name in names or list(syncs):
                    syncs[name]["jobs"].append(self.clock.new())
                    del syncs[name]["jobs"][:-5]  # keep a short history, like a ring buffer
            self.store.save()
        return JSONResponse({"success": True})

    def _sync_view(self, conn: dict[str, Any], name: str, spec: dict[str, Any]) -> dict[str, Any]:
        sync = conn["syncs"][name]
        frequency = sync["frequency"] or spec["runs"]
        job = sync["jobs"][-1] if sync["jobs"] else None
        view = self.clock.view(job) if job else None
        # a sync that never ran is SUCCESS on the real server, with no finishedAt
        status = {"queued": "RUNNING", "running": "RUNNING", "completed": "SUCCESS", "failed": "ERROR",
                  "cancelled": "STOPPED", None: "SUCCESS"}[view["status"] if view else None]
        out: dict[str, Any] = {
            "id": sync["id"], "connection_id": conn["connection_id"], "name": name, "variant": "base",
            "status": status, "type": "INITIAL" if len(sync["jobs"]) <= 1 else "INCREMENTAL",
            "frequency": frequency, "checkpoint": None,
            "recordCount": {spec["model"]: view["records"] if view else 0},
            "latestResult": {spec["model"]: {"added": view["records"] if view else 0, "updated": 0, "deleted": 0}},
        }
        if view and view["finished_at"]:
            out["finishedAt"] = view["finished_at"]
            finished = datetime.fromisoformat(view["finished_at"].replace("Z", "+00:00"))
            seconds = parse_frequency(frequency) or 86400
            out["nextScheduledSyncAt"] = (finished + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
        else:
            nxt = datetime.fromtimestamp(time.time() + (parse_frequency(frequency) or 86400), timezone.utc)
            out["nextScheduledSyncAt"] = nxt.isoformat().replace("+00:00", "Z")
        return out

    async def sync_status(self, request: Request) -> JSONResponse:
        q = request.query_params
        problems: list[tuple[list[str | int], str]] = []
        for name in ("provider_config_key", "syncs"):
            if not q.get(name):
                problems.append(([name], "Required"))
        problems += [([k], "Unrecognized key") for k in q if k not in ("provider_config_key", "syncs", "connection_id")]
        if problems:
            raise invalid("invalid_query_params", problems)
        pck = q["provider_config_key"]
        with self.store.lock:
            if q.get("connection_id"):
                # unknown or deleted connection (or integration): the real server's 400 invalid_body
                conns = [self._connection(q["connection_id"], pck, 400, "invalid_body")]
            else:
                if pck not in self.store.data["integrations"]:
                    return JSONResponse([])  # the real server: an unknown integration is 200 []
                conns = sorted((c for c in self.store.data["connections"].values()
                                if c["provider_config_key"] == pck), key=lambda c: c["id"])
            integration = self.store.data["integrations"][pck]
            specs = {s["name"]: s for s in integration["syncs"]}
            requested = None if q["syncs"] == "*" else [s.split("::")[0] for s in q["syncs"].split(",") if s]
            unknown = [n for n in requested or [] if n not in specs]
            if unknown:
                raise ApiError(400, "unknown_sync", f"Unknown sync(s) for {pck}: {', '.join(unknown)}")
            views = [self._sync_view(c, n, specs[n]) for c in conns for n in self._syncs(c)
                     if requested is None or n in requested]
            return JSONResponse({"syncs": views})

    # -- rate limit ----------------------------------------------------------------------------
    def rate_limited(self, account: str, request: Request) -> tuple[JSONResponse | None, dict[str, str]]:
        """(a 429 or None, the X-RateLimit headers every answer carries while the limit is on)."""
        if self.limiter is None:
            return None, {}
        allowed, remaining, reset_in = self.limiter.consume(account)
        headers = {"X-RateLimit-Limit": str(self.limiter.points), "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset": str(int(time.time() + reset_in))}
        if allowed:
            return None, headers
        # floor to whole seconds, as the real middleware does: under a second left reads "0"
        headers["Retry-After"] = str(int(reset_in))
        self.throttled += 1
        return JSONResponse({"error": {"code": "too_many_request", "method": request.method,
                                       "path": request.url.path}}, status_code=429, headers=headers), headers


def create_app(config: EmulatorConfig) -> Starlette:
    nango = Nango(config)

    def guarded(handler):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> JSONResponse:
            headers: dict[str, str] = {}
            try:
                account = nango._authorised(request)
                refused, headers = nango.rate_limited(account, request)
                if refused is not None:
                    return refused
                response = await handler(request)
            except ApiError as err:
                response = err.response()
            response.headers.update(headers)
            return response
        return endpoint
    routes = [
        Route("/connections", guarded(nango.list_connections), methods=["GET"]),
        Route("/connections", guarded(nango.upsert_connection), methods=["POST"]),
        Route("/connections/metadata", guarded(nango.metadata), methods=["POST", "PATCH"]),
        Route("/connections/{connection_id}", guarded(nango.get_connection), methods=["GET"]),
        Route("/connections/{connection_id}", guarded(nango.patch_connection), methods=["PATCH"]),
        Route("/connections/{connection_id}", guarded(nango.delete_connection), methods=["DELETE"]),
        Route("/integrations", guarded(nango.list_integrations), methods=["GET"]),
        Route("/integrations/{unique_key}/functions", guarded(nango.list_functions), methods=["GET"]),
        Route("/sync/update-connection-frequency", guarded(nango.update_frequency), methods=["PUT"]),
        Route("/sync/trigger", guarded(nango.trigger), methods=["POST"]),
        Route("/sync/status", guarded(nango.sync_status), methods=["GET"]),
    ]

    async def throttled(_request: Request) -> JSONResponse:
        return JSONResponse({"throttled": nango.throttled})

    routes.append(Route(f"{ADMIN_PREFIX}/throttled", throttled, methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.store = nango.store
    return app
