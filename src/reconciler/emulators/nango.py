"""A local Nango: the current ``/connections`` API, metadata, per-sync frequency, sync trigger/status.

Shapes follow ``specs/nango-openapi.yaml`` field for field. Errors use Nango's ``StdError`` body,
``{"error": {"code": ..., "message": ..., "errors": [...]}}``. Integrations named by
``config.targets`` are pre-created; each gets the syncs of its provider's catalogue entry (the
provider is guessed from the unique key's prefix, e.g. ``github-prod`` → ``github``), because real
Nango's syncs come from scripts deployed per integration and a connection only has those.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .base import EmulatorConfig, JobClock, Store, new_id, now_iso

# provider -> [(sync name, default frequency, model)]; the first matching prefix wins
CATALOGUE: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("google-drive", [("documents", "every hour", "Document")]),
    ("github", [("issues", "every hour", "GithubIssue"), ("pull-requests", "every 6 hours", "GithubPullRequest")]),
    ("slack", [("messages", "every 30 minutes", "SlackMessage"), ("channels", "every day", "SlackChannel"),
               ("users", "every day", "SlackUser")]),
    ("notion", [("pages", "every 6 hours", "NotionPage")]),
    ("hubspot", [("contacts", "every hour", "HubspotContact")]),
]
GENERIC_SYNCS = [("records", "every day", "Record")]

DEFAULT_PAGE_MAX = 1000  # Nango refuses larger pages rather than truncating silently
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


def _catalogue_for(unique_key: str) -> tuple[str, list[tuple[str, str, str]]]:
    for provider, syncs in CATALOGUE:
        if unique_key == provider or unique_key.startswith(provider + "-"):
            return provider, syncs
    return unique_key.split("-")[0] or unique_key, GENERIC_SYNCS


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


def _check_credentials(creds: Any) -> list[tuple[list[str | int], str]]:
    if not isinstance(creds, dict):
        return [(["credentials"], "Required" if creds is None else "Expected object")]
    ctype = creds.get("type")
    if ctype not in CREDENTIAL_TYPES:
        return [(["credentials", "type"], f"Invalid enum value. Expected {' | '.join(CREDENTIAL_TYPES)}")]
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
        self.store = Store("nango", config.data_dir, {"next_id": 1, "integrations": {}, "connections": {}})
        with self.store.lock:
            for key in config.targets:
                if key not in self.store.data["integrations"]:
                    self._add_integration(key)
            self.store.save()

    # -- helpers ------------------------------------------------------------------------------
    def _add_integration(self, key: str) -> None:
        provider, syncs = _catalogue_for(key)
        stamp = now_iso()
        self.store.data["integrations"][key] = {
            "unique_key": key, "display_name": provider.replace("-", " ").title(), "provider": provider,
            "logo": f"https://app.nango.dev/images/template-logos/{provider}.svg",
            "created_at": stamp, "updated_at": stamp, "forward_webhooks": True,
            "syncs": [{"id": i + 1, "name": n, "runs": f, "model": m} for i, (n, f, m) in enumerate(syncs)],
        }

    def _next_id(self) -> int:
        value = self.store.data["next_id"]
        self.store.data["next_id"] = value + 1
        return value

    def _integration(self, key: str, status: int = 404) -> dict[str, Any]:
        integration = self.store.data["integrations"].get(key)
        if integration is None:
            raise ApiError(status, "unknown_provider_config",
                           "Provider config not found for the given provider config key. Please make sure the "
                           "provider config exists in the Nango dashboard.")
        return integration

    def _connection(self, connection_id: str, pck: str | None, status: int = 404) -> dict[str, Any]:
        conn = self.store.data["connections"].get(f"{pck}/{connection_id}")
        if conn is None:
            raise ApiError(status, "unknown_connection",
                           f"Connection not found: connection_id={connection_id!r}, provider_config_key={pck!r}")
        return conn

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

    def _authorised(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing_auth_header",
                           "Authentication failed. The request is missing the Authorization header.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "malformed_auth_header",
                           "Authentication failed. The provided Authorization header is malformed.")
        if token.strip() != self.config.api_key:
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
            "credentials": self._public_credentials(conn["credentials"], with_refresh),
        }

    @staticmethod
    def _summary(conn: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": conn["id"], "connection_id": conn["connection_id"], "provider": conn["provider"],
            "provider_config_key": conn["provider_config_key"], "created": conn["created_at"],
            "metadata": dict(conn["metadata"]) if conn["metadata"] else None, "tags": dict(conn["tags"]),
            "errors": list(conn["errors"]), "end_user": None,
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
            items = sorted(self.store.data["connections"].values(), key=lambda c: c["id"])
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
        problems += _check_credentials(body.get("credentials"))
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
            integration = self._integration(pck)
            connection_id = connection_id or new_id()
            key = f"{pck}/{connection_id}"
            stamp = now_iso()
            conn = self.store.data["connections"].get(key)
            if conn is None:
                conn = {
                    "id": self._next_id(), "connection_id": connection_id, "provider_config_key": pck,
                    "provider": integration["provider"], "created_at": stamp, "metadata": {},
                    "connection_config": {}, "tags": {}, "errors": [], "syncs": {},
                }
                for sync in integration["syncs"]:
                    # auto_start: a new connection's syncs run once straight away, as on Nango
                    conn["syncs"][sync["name"]] = {"id": new_id(), "frequency": None, "jobs": [self.clock.new()]}
                self.store.data["connections"][key] = conn
            conn["credentials"] = dict(body["credentials"])
            for name in ("metadata", "connection_config"):
                if name in body:
                    conn[name] = dict(body[name])
            if tags is not None:
                conn["tags"] = tags
            conn["updated_at"] = conn["last_fetched_at"] = stamp
            self.store.save()
            return JSONResponse(self._full(conn))

    def _pck_query(self, request: Request) -> str:
        pck = request.query_params.get("provider_config_key")
        if not pck:
            raise invalid("invalid_query_params", [(["provider_config_key"], "Required")])
        return pck

    async def get_connection(self, request: Request) -> JSONResponse:
        pck = self._pck_query(request)
        with_refresh = request.query_params.get("refresh_token") == "true"
        with self.store.lock:
            self._integration(pck, 400)
            conn = self._connection(request.path_params["connection_id"], pck)
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
            conn = self._connection(request.path_params["connection_id"], pck)
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
            conn = self._connection(request.path_params["connection_id"], pck)
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
            integration = self._integration(request.path_params["unique_key"])
            functions = [] if q.get("type") not in (None, "sync") else [
                {"name": s["name"], "type": "sync", "returns": [s["model"]], "json_schema": None,
                 "runs": s["runs"], "auto_start": True, "track_deletes": False, "id": s["id"], "enabled": True,
                 "last_deployed": integration["created_at"], "source": "catalog"}
                for s in integration["syncs"] if not q.get("search") or q["search"].lower() in s["name"].lower()]
        return JSONResponse({"data": functions[page * limit:(page + 1) * limit],
                             "pagination": {"total": len(functions), "page": page, "limit": limit}})

    # -- syncs -------------------------------------------------------------------------------
    def _sync_names(self, integration: dict[str, Any], requested: Any) -> list[str]:
        known = [s["name"] for s in integration["syncs"]]
        if requested in ([], None):
            return known
        if not isinstance(requested, list):
            raise invalid("invalid_body", [(["syncs"], "Expected array")])
        names = [r["name"] if isinstance(r, dict) else r for r in requested]
        missing = [n for n in names if n not in known]
        if missing:
            raise ApiError(400, "unknown_sync", f"Unknown sync(s) for {integration['unique_key']}: "
                           f"{', '.join(map(str, missing))}")
        return names

    async def update_frequency(self, request: Request) -> JSONResponse:
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
        if problems:
            raise invalid("invalid_body", problems)
        with self.store.lock:
            integration = self._integration(body["provider_config_key"], 400)
            conn = self._connection(body["connection_id"], body["provider_config_key"], 400)
            name = self._sync_names(integration, [body["sync_name"]])[0]
            conn["syncs"][name]["frequency"] = freq
            self.store.save()
            default = next(s["runs"] for s in integration["syncs"] if s["name"] == name)
        return JSONResponse({"frequency": freq if freq is not None else default})

    async def trigger(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        if not isinstance(body.get("provider_config_key"), str):
            raise invalid("invalid_body", [(["provider_config_key"], "Required")])
        if "syncs" not in body:
            raise invalid("invalid_body", [(["syncs"], "Required")])
        with self.store.lock:
            integration = self._integration(body["provider_config_key"], 400)
            names = self._sync_names(integration, body["syncs"])
            if body.get("connection_id") is not None:
                conns = [self._connection(body["connection_id"], body["provider_config_key"], 400)]
            else:
                conns = [c for c in self.store.data["connections"].values()
                         if c["provider_config_key"] == body["provider_config_key"]]
            for conn in conns:
                for name in names:
                    conn["syncs"][name]["jobs"].append(self.clock.new())
                    del conn["syncs"][name]["jobs"][:-5]  # keep a short history, like a ring buffer
            self.store.save()
        return JSONResponse({"success": True})

    def _sync_view(self, conn: dict[str, Any], name: str, spec: dict[str, Any]) -> dict[str, Any]:
        sync = conn["syncs"][name]
        frequency = sync["frequency"] or spec["runs"]
        job = sync["jobs"][-1] if sync["jobs"] else None
        view = self.clock.view(job) if job else None
        status = {"queued": "RUNNING", "running": "RUNNING", "completed": "SUCCESS", "failed": "ERROR",
                  "cancelled": "STOPPED", None: "PAUSED"}[view["status"] if view else None]
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
        if problems:
            raise invalid("invalid_query_params", problems)
        with self.store.lock:
            integration = self._integration(q["provider_config_key"], 400)
            requested = None if q["syncs"] == "*" else [s.split("::")[0] for s in q["syncs"].split(",") if s]
            names = self._sync_names(integration, requested)
            specs = {s["name"]: s for s in integration["syncs"]}
            if q.get("connection_id"):
                conns = [self._connection(q["connection_id"], q["provider_config_key"], 400)]
            else:
                conns = sorted((c for c in self.store.data["connections"].values()
                                if c["provider_config_key"] == q["provider_config_key"]), key=lambda c: c["id"])
            return JSONResponse({"syncs": [self._sync_view(c, n, specs[n]) for c in conns for n in names]})


def create_app(config: EmulatorConfig) -> Starlette:
    nango = Nango(config)

    def guarded(handler):  # type: ignore[no-untyped-def]
        async def endpoint(request: Request) -> JSONResponse:
            try:
                nango._authorised(request)
                return await handler(request)
            except ApiError as err:
                return err.response()
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
    app = Starlette(routes=routes)
    app.state.store = nango.store
    return app
