"""Connectors API emulator: ``/v1/connectors`` CRUD, syncs with progress, per-type config validation.

What the docs excerpt (``seeds/connectors-api.txt``) fixes: the paths, ``{"data": ...}`` envelopes,
the list item fields (id, name, type, status, collection, lastSync, createdAt), the connector
types and their config fields (lines 54-62), the sync job shape (jobId, status, progress{collected,
parsed, indexed}, startedAt), the OAuth routes (lines 128-146) and the PUT example (lines 78-83).
Where the excerpt is silent the emulator makes these choices:

- Auth: ``Authorization: Bearer <api key>``; missing or wrong is 401.
- Errors: ``{"error": {"code": str, "message": str, "details": [{"field", "message"}]}}`` with
  400 ``invalid_request`` (not JSON / not an object, a bad cursor or offset), 401 ``unauthorized``,
  404 ``not_found`` (connector, job, an unknown ``collection``), 409 ``oauth_pending`` (a sync
  before the OAuth callback), 422 ``validation_error`` (with details) and 422 ``immutable_field``
  (``type`` or ``collection`` changed by PUT). Error texts name fields, never submitted values.
- Validation: the shared per-type rules (``reconciler.scope_rules``, the same the manifest schema
  is generated from): required config keys, value types, non-empty values, no unknown keys; a
  non-OAuth type needs its credential fields and takes no others; unknown top-level fields are
  refused. The server fills ``schema: "public"`` for postgresql.
- OAuth types (google_drive, notion) take no credentials: they are created ``pending``; ``GET
  /v1/connectors/oauth/{type}/authorize?connectorId=ID`` answers ``{"data": {"authUrl"}}`` with a
  ``state`` in the URL, and ``POST /v1/connectors/oauth/{type}/callback`` with ``{code, state}``
  makes the connector ``active``.
- List: ``GET /v1/connectors?limit=`` (default 20, max 100). How it pages is the ``paging`` knob:
  ``cursor`` (default: ``{"data", "pagination": {"nextCursor", "hasMore"}}``, opaque ``cursor``),
  ``link`` (a ``Link: <...>; rel="next"`` header), ``offset`` (``?offset=``, nothing in the
  answer), ``none`` (the first page only: a truncated list). Items lack ``config`` (as in the
  excerpt) and carry ``updatedAt``, which changes only when the connector itself does.
- Detail (GET/POST/PUT answers) adds ``config``. Credentials are write-only: never returned, and
  stored only as a keyed fingerprint (key held in the process) so tests can see a rotation.
- POST create is not idempotent: names are not unique, so a repeated POST makes a second connector.
- PUT: ``name`` renames, ``credentials`` replace when present and are kept when absent, ``type``
  and ``collection`` may be repeated but not changed. ``config`` follows the ``update_mode`` knob:
  ``replace`` (default) stores the given config as the whole config (so the seed's own example,
  only ``prefix``, is accepted and what it leaves out is gone), ``merge`` applies it as a JSON
  merge patch (``null`` removes a key) and validates the result.
- Sync: ``POST /v1/connectors/{id}/sync`` → 202 with the queued job; jobs advance with wall time
  (base.JobClock). Connector ``status`` is ``pending`` before the OAuth callback, ``syncing`` while
  a job runs, ``error`` after a failed one, else ``active``; ``lastSync`` is the end of the latest
  finished job. The ``sync_status_word`` knob makes finished jobs report another word.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from .. import scope_rules
from ..scope_rules import CONNECTORS_API as TYPES
from ..scope_rules import CONNECTORS_API_DEFAULTS as CONFIG_DEFAULTS
from .base import BadCursor, EmulatorConfig, JobClock, JSONResponse, Store, now_iso, paginate

OAUTH_TYPES = frozenset(t for t, rules in TYPES.items() if rules.oauth)
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
NAME_MAX = 128
CREATE_FIELDS = ("name", "type", "collection", "config", "credentials")
# where each OAuth type's consent screen lives (seed line 140 shows Google's)
AUTH_HOSTS = {"google_drive": "https://accounts.google.com/o/oauth2/v2/auth",
              "notion": "https://api.notion.com/v1/oauth/authorize"}


def _blank(value: Any) -> bool:
    return not (isinstance(value, str) and value.strip())


def _details(problems: list[scope_rules.Problem]) -> list[dict[str, str]]:
    return [{"field": ".".join(p.path), "message": p.message} for p in problems]


def validate_config(type_name: str, config: Any, *, partial: bool = False) -> list[dict[str, str]]:
    """The config of ``type_name`` checked against the shared rules (``reconciler.scope_rules``)."""
    rules = TYPES[type_name]
    problems = scope_rules.check_scope(rules, config, "config", type_name)
    if partial:
        problems = [p for p in problems if p.code != "missing"]
    return _details(problems)


def _error(status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


class _Refusal(Exception):
    """An error answer raised from deep in a handler; :func:`guarded` turns it into the response."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def create_app(config: EmulatorConfig) -> Starlette:
    store = Store("connectors-api", config.data_dir, {"collections": [], "connectors": {}, "jobs": {}, "seq": 0})
    with store.lock:
        for collection in config.targets:
            if collection not in store.data["collections"]:
                store.data["collections"].append(collection)
        store.save()
    clock = JobClock(config.sync_duration, config.sync_fail)
    fingerprint_key = secrets.token_bytes(16)  # per process, never stored
    max_limit = config.page_limit_max or MAX_LIMIT

    def fingerprint(creds: Any) -> str:
        return hmac.new(fingerprint_key, json.dumps(creds, sort_keys=True).encode(), hashlib.sha256).hexdigest()

    def authorized(request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        if not token or not hmac.compare_digest(token.encode(), config.api_key.encode()):
            return _error(401, "unauthorized", "Missing or invalid API key")
        return None

    def job_view(job: dict[str, Any]) -> dict[str, Any]:
        view = clock.view(job)
        frac = view["fraction"]
        total = clock.total
        # each stage trails the one before it and all meet at the total when done
        progress = {"collected": int(total * frac), "parsed": int(total * frac ** 1.5), "indexed": int(total * frac ** 2)}
        word = config.sync_status_word if view["finished_at"] and config.sync_status_word else view["status"]
        out = {"jobId": job["id"], "status": word, "progress": progress, "startedAt": job["created_at"],
               "completedAt": view["finished_at"]}
        if view["error"]:
            out["error"] = view["error"]
        return out

    def live_status(conn: dict[str, Any]) -> tuple[str, str | None]:
        if conn.get("oauth_pending"):
            return "pending", None
        views = [clock.view(store.data["jobs"][j]) for j in conn["jobs"] if j in store.data["jobs"]]  # oldest first
        ended = [v for v in views if v["finished_at"]]
        last_sync = ended[-1]["finished_at"] if ended else None
        if any(v["status"] in ("queued", "running") for v in views):
            return "syncing", last_sync
        if ended and ended[-1]["status"] == "failed":
            return "error", last_sync
        return "active", last_sync

    def item(conn: dict[str, Any], detail: bool) -> dict[str, Any]:
        status, last_sync = live_status(conn)
        out = {"id": conn["id"], "name": conn["name"], "type": conn["type"], "status": status,
               "collection": conn["collection"], "lastSync": last_sync, "createdAt": conn["createdAt"],
               "updatedAt": conn["updatedAt"]}
        if detail:
            out["config"] = conn["config"]
        return out

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _Refusal(_error(400, "invalid_request", "Request body must be JSON")) from None
        if not isinstance(body, dict):
            raise _Refusal(_error(400, "invalid_request", "Request body must be a JSON object"))
        return body

    def check_fields(body: dict[str, Any], type_name: str, *, creating: bool, allowed: tuple[str, ...],
                     config_partial: bool = False) -> list[dict[str, str]]:
        details = [{"field": str(k), "message": "unknown field; allowed: " + ", ".join(allowed)}
                   for k in body if k not in allowed]
        if creating or "name" in body:
            name = body.get("name")
            if _blank(name) or len(name) > NAME_MAX:
                details.append({"field": "name", "message": f"must be a non-empty string of at most {NAME_MAX} characters"})
        if creating or "config" in body:
            details += validate_config(type_name, body.get("config", {}), partial=config_partial)
        rules = TYPES[type_name]
        if "credentials" in body or (creating and not rules.oauth):
            details += _details(scope_rules.check_credentials(rules, body.get("credentials"), "credentials", type_name))
        return details

    async def list_connectors(request: Request) -> JSONResponse:
        params = request.query_params
        try:
            limit = int(params.get("limit", min(DEFAULT_LIMIT, max_limit)))
        except ValueError:
            limit = -1
        if not 1 <= limit <= max_limit:
            return _error(422, "validation_error", f"limit must be an integer between 1 and {max_limit}",
                          [{"field": "limit", "message": f"must be between 1 and {max_limit}"}])
        with store.lock:
            rows = sorted(store.data["connectors"].values(), key=lambda c: c["seq"])
            try:
                page = paginate(config.paging, rows, limit, params, request.url, seq=lambda c: c["seq"])
            except BadCursor as exc:
                return _error(400, "invalid_request", str(exc).capitalize())
            data = [item(c, detail=False) for c in page.items]
        body: dict[str, Any] = {"data": data}
        if (config.paging or "cursor") == "cursor":
            body["pagination"] = {"nextCursor": page.next_cursor, "hasMore": page.next_cursor is not None}
        return JSONResponse(body, headers=page.headers)

    async def create(request: Request) -> JSONResponse:
        body = await body_of(request)
        type_name = body.get("type")
        if type_name not in TYPES:
            return _error(422, "validation_error", "Invalid connector",
                          [{"field": "type", "message": f"must be one of: {', '.join(TYPES)}"}])
        details = check_fields(body, type_name, creating=True, allowed=CREATE_FIELDS)
        if _blank(body.get("collection")):
            details.append({"field": "collection", "message": "is required"})
        if details:
            return _error(422, "validation_error", "Invalid connector", details)
        with store.lock:
            if body["collection"] not in store.data["collections"]:
                return _error(404, "not_found", "Collection not found")
            now = now_iso()
            store.data["seq"] += 1
            conn = {
                "id": "conn_" + secrets.token_hex(8), "seq": store.data["seq"], "name": body["name"],
                "type": type_name, "collection": body["collection"],
                "config": {**CONFIG_DEFAULTS.get(type_name, {}), **body.get("config", {})},
                "credential_fingerprint": fingerprint(body.get("credentials") or {}),
                # an OAuth type waits for its callback (seed lines 128-146) before it can sync
                "oauth_pending": type_name in OAUTH_TYPES,
                "createdAt": now, "updatedAt": now, "jobs": [],
            }
            store.data["connectors"][conn["id"]] = conn
            store.save()
            return JSONResponse({"data": item(conn, detail=True)}, status_code=201)

    def find(request: Request) -> dict[str, Any]:
        conn = store.data["connectors"].get(request.path_params["id"])
        if conn is None:
            raise _Refusal(_error(404, "not_found", "Connector not found"))
        return conn

    async def get(request: Request) -> JSONResponse:
        with store.lock:
            conn = find(request)
            return JSONResponse({"data": item(conn, detail=True)})

    async def put(request: Request) -> JSONResponse:
        body = await body_of(request)
        merge = config.update_mode == "merge"
        with store.lock:
            conn = find(request)
            moved = [f for f in ("type", "collection") if f in body and body[f] != conn[f]]
            if moved:
                return _error(422, "immutable_field", f"{' and '.join(moved)} cannot be changed; create a new connector",
                              [{"field": f, "message": "cannot be changed"} for f in moved])
            if merge and isinstance(body.get("config"), dict):
                # JSON merge patch (RFC 7386): given keys overwrite, null removes, the rest stays
                merged = {**conn["config"], **body["config"]}
                new_config = {k: v for k, v in merged.items() if v is not None}
            else:
                new_config = body.get("config")
            checked = {**body, "config": new_config} if "config" in body else body
            # replace mode takes the config it is given as the whole config, so the seed's own
            # example (line 78-83: only `prefix`) is accepted; what it leaves out is gone
            details = check_fields(checked, conn["type"], creating=False, allowed=CREATE_FIELDS,
                                   config_partial=not merge)
            if details:
                return _error(422, "validation_error", "Invalid connector", details)
            if "name" in body:
                conn["name"] = body["name"]
            if "config" in body:
                conn["config"] = {**CONFIG_DEFAULTS.get(conn["type"], {}), **new_config}
            if "credentials" in body:
                conn["credential_fingerprint"] = fingerprint(body["credentials"])
            conn["updatedAt"] = now_iso()
            store.save()
            return JSONResponse({"data": item(conn, detail=True)})

    def oauth_type(request: Request) -> str:
        type_name = request.path_params["type"]
        if type_name not in OAUTH_TYPES:
            raise _Refusal(_error(404, "not_found", "No OAuth flow for this connector type",
                                  [{"field": "type", "message": "must be one of: " + ", ".join(sorted(OAUTH_TYPES))}]))
        return type_name

    def pending_connector(type_name: str, connector_id: Any) -> dict[str, Any]:
        conn = store.data["connectors"].get(connector_id) if isinstance(connector_id, str) else None
        if conn is None or conn["type"] != type_name:
            raise _Refusal(_error(404, "not_found", "Connector not found"))
        return conn

    async def authorize(request: Request) -> JSONResponse:
        # seed lines 132-142; which connector the URL is for is not documented: connectorId
        type_name = oauth_type(request)
        with store.lock:
            conn = pending_connector(type_name, request.query_params.get("connectorId"))
            state = conn.setdefault("oauth_state", secrets.token_urlsafe(16))
            store.save()
        url = (f"{AUTH_HOSTS[type_name]}?client_id=connectors-api-emulator&response_type=code"
               f"&redirect_uri=https%3A%2F%2Fapp.connectors-api.com%2Foauth%2Fcallback&state={state}")
        return JSONResponse({"data": {"authUrl": url}})

    async def callback(request: Request) -> JSONResponse:
        # seed line 146: what a browser's redirect posts back ({code, state}, decided)
        type_name = oauth_type(request)
        body = await body_of(request)
        details = [{"field": k, "message": "is required"} for k in ("code", "state") if _blank(body.get(k))]
        details += [{"field": str(k), "message": "unknown field; allowed: code, state"}
                    for k in body if k not in ("code", "state")]
        if details:
            return _error(422, "validation_error", "Invalid OAuth callback", details)
        with store.lock:
            conn = next((c for c in store.data["connectors"].values()
                         if c["type"] == type_name and c.get("oauth_state") == body["state"]), None)
            if conn is None:
                return _error(404, "not_found", "Unknown or expired OAuth state")
            conn["oauth_pending"] = False
            conn["oauth_state"] = None
            conn["credential_fingerprint"] = fingerprint({"oauth_code": body["code"]})
            conn["updatedAt"] = now_iso()
            store.save()
            return JSONResponse({"data": item(conn, detail=True)})

    async def delete(request: Request) -> JSONResponse:
        with store.lock:
            conn = find(request)
            for job_id in conn["jobs"]:
                store.data["jobs"].pop(job_id, None)
            del store.data["connectors"][conn["id"]]
            store.save()
        return JSONResponse({"data": {"id": conn["id"], "deleted": True}})

    async def trigger_sync(request: Request) -> JSONResponse:
        with store.lock:
            conn = find(request)
            if conn.get("oauth_pending"):
                return _error(409, "oauth_pending", "The connector waits for its OAuth authorization")
            job = clock.new()
            job["id"] = "job_" + secrets.token_hex(8)
            job["connector_id"] = conn["id"]
            store.data["jobs"][job["id"]] = job
            conn["jobs"].append(job["id"])
            store.save()
            view = job_view(job)
        return JSONResponse({"data": {"jobId": view["jobId"], "status": view["status"], "startedAt": view["startedAt"]}},
                            status_code=202)

    async def get_sync(request: Request) -> JSONResponse:
        with store.lock:
            conn = find(request)
            job = store.data["jobs"].get(request.path_params["job_id"])
            if job is None or job["connector_id"] != conn["id"]:
                return _error(404, "not_found", "Sync job not found")
            return JSONResponse({"data": job_view(job)})

    def guarded(handler: Callable[[Request], Awaitable[JSONResponse]]) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def run(request: Request) -> JSONResponse:
            if (denied := authorized(request)) is not None:
                return denied
            try:
                return await handler(request)
            except _Refusal as refusal:
                return refusal.response

        return run

    app = Starlette(routes=[
        Route("/v1/connectors", guarded(list_connectors), methods=["GET"]),
        Route("/v1/connectors/oauth/{type}/authorize", guarded(authorize), methods=["GET"]),
        Route("/v1/connectors/oauth/{type}/callback", guarded(callback), methods=["POST"]),
        Route("/v1/connectors", guarded(create), methods=["POST"]),
        Route("/v1/connectors/{id}", guarded(get), methods=["GET"]),
        Route("/v1/connectors/{id}", guarded(put), methods=["PUT"]),
        Route("/v1/connectors/{id}", guarded(delete), methods=["DELETE"]),
        Route("/v1/connectors/{id}/sync", guarded(trigger_sync), methods=["POST"]),
        Route("/v1/connectors/{id}/sync/{job_id}", guarded(get_sync), methods=["GET"]),
    ])
    app.state.store = store
    return app
