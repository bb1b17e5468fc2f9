"""Connectors API emulator: ``/v1/connectors`` CRUD, syncs with progress, per-type config validation.

What the docs excerpt (``seeds/connectors-api.txt``) fixes: the paths, ``{"data": ...}`` envelopes,
the list item fields (id, name, type, status, collection, lastSync, createdAt), the connector
types and their config fields, the sync job shape (jobId, status, progress{collected, parsed,
indexed}, startedAt). Where the excerpt is silent the emulator makes these choices:

- Auth: ``Authorization: Bearer <api key>``; missing or wrong is 401.
- Errors: ``{"error": {"code": str, "message": str, "details": [{"field", "message"}]}}`` with
  400 ``invalid_request`` (not JSON / not an object), 401 ``unauthorized``, 404 ``not_found``
  (connector, job, or an unknown ``collection``), 422 ``validation_error`` (with details) and 422
  ``immutable_field`` (``type`` or ``collection`` changed by PUT). Error texts never echo values.
- List: cursor pagination, ``GET /v1/connectors?limit=&cursor=`` (limit default 20, max 100) →
  ``{"data": [...], "pagination": {"nextCursor": str | null, "hasMore": bool}}``; the cursor is
  opaque. Items lack ``config`` (as in the excerpt) and carry ``updatedAt``, which changes only when
  the connector itself does (not on syncs), so a client can tell when a detail GET is needed.
- Detail (GET/POST/PUT answers) adds ``config``. Credentials are write-only: never returned, and
  stored only as a keyed fingerprint (key held in the process) so tests can see a rotation.
- Config is validated per type: required fields present, types right, unknown fields rejected.
  OAuth types (google_drive, notion) document no config fields and take credentials optionally;
  every other type needs a non-empty ``credentials`` object. The server fills ``schema: "public"``
  for postgresql.
- POST create is not idempotent: names are not unique, so a repeated POST makes a second connector.
- PUT replaces what it is given: ``config`` is replaced whole (and validated on its own),
  ``credentials`` replaced when present and kept when absent, ``name`` renamed; ``type`` and
  ``collection`` may be repeated but not changed.
- Sync: ``POST /v1/connectors/{id}/sync`` → 202 with the queued job; jobs advance with wall time
  (base.JobClock). Connector ``status`` is ``syncing`` while a job runs, ``error`` after a failed
  one, else ``active``; ``lastSync`` is the end of the latest finished job.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .base import EmulatorConfig, JobClock, Store, now_iso

OAUTH_TYPES = frozenset({"google_drive", "notion"})
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
NAME_MAX = 128


def _str(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _url(value: Any) -> str | None:
    if _str(value) or not value.startswith(("https://", "http://")):
        return "must be an http(s) URL"
    return None


def _str_list(value: Any) -> str | None:
    if not isinstance(value, list) or not value or any(_str(v) for v in value):
        return "must be a non-empty list of non-empty strings"
    return None


def _port(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return "must be an integer between 1 and 65535"
    return None


def _date_range(value: Any) -> str | None:
    # a relative span ("30d") or {"from": date, "to": date}
    if isinstance(value, str) and value.strip():
        return None
    if isinstance(value, dict) and value and set(value) <= {"from", "to"} and all(not _str(v) for v in value.values()):
        return None
    return 'must be a string like "30d" or an object {"from", "to"}'


Check = Callable[[Any], "str | None"]
# type -> field -> (check, required)
CONFIG_FIELDS: dict[str, dict[str, tuple[Check, bool]]] = {
    "s3": {"bucket": (_str, True), "region": (_str, True), "prefix": (_str, False), "endpoint": (_url, False)},
    "google_drive": {},
    "confluence": {"instanceUrl": (_url, True), "spaceKeys": (_str_list, False)},
    "github": {"repos": (_str_list, True), "branch": (_str, False), "pathFilter": (_str, False)},
    "slack": {"channels": (_str_list, True), "dateRange": (_date_range, False)},
    "notion": {},
    "salesforce": {"objects": (_str_list, True), "soqlFilter": (_str, False)},
    "postgresql": {"host": (_str, True), "port": (_port, True), "database": (_str, True), "schema": (_str, False)},
}
# what the server fills in when the caller leaves it out
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {"postgresql": {"schema": "public"}}


def validate_config(type_name: str, config: Any) -> list[dict[str, str]]:
    fields = CONFIG_FIELDS[type_name]
    if not isinstance(config, dict):
        return [{"field": "config", "message": "must be an object"}]
    details = []
    for name in sorted(set(config) - set(fields)):
        allowed = ", ".join(fields) or "none (OAuth is handled separately)"
        details.append({"field": f"config.{name}", "message": f"unknown field for type {type_name}; allowed: {allowed}"})
    for name, (check, required) in fields.items():
        if name not in config:
            if required:
                details.append({"field": f"config.{name}", "message": "is required"})
            continue
        problem = check(config[name])
        if problem:
            details.append({"field": f"config.{name}", "message": problem})
    return details


def _credentials_ok(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    return all(isinstance(v, str) and v or isinstance(v, dict) and _credentials_ok(v) for v in value.values())


def _error(status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status)


class _Refusal(Exception):
    """An error answer raised from deep in a handler; :func:`guarded` turns it into the response."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = raw.partition(":")
        return int(number) if prefix == "seq" else None
    except (ValueError, UnicodeDecodeError):
        return None


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
        out = {"jobId": job["id"], "status": view["status"], "progress": progress, "startedAt": job["created_at"],
               "completedAt": view["finished_at"]}
        if view["error"]:
            out["error"] = view["error"]
        return out

    def live_status(conn: dict[str, Any]) -> tuple[str, str | None]:
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

    def check_fields(body: dict[str, Any], type_name: str, *, creating: bool) -> list[dict[str, str]]:
        details: list[dict[str, str]] = []
        if creating or "name" in body:
            name = body.get("name")
            if _str(name) or len(name) > NAME_MAX:
                details.append({"field": "name", "message": f"must be a non-empty string of at most {NAME_MAX} characters"})
        if creating or "config" in body:
            details += validate_config(type_name, body.get("config", {}))
        if "credentials" in body or (creating and type_name not in OAUTH_TYPES):
            creds = body.get("credentials")
            if not _credentials_ok(creds) or not creds:
                details.append({"field": "credentials", "message": "must be a non-empty object of string values"})
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
        after = 0
        if params.get("cursor"):
            decoded = _decode_cursor(params["cursor"])
            if decoded is None:
                return _error(400, "invalid_request", "Invalid cursor")
            after = decoded
        with store.lock:
            rows = sorted((c for c in store.data["connectors"].values() if c["seq"] > after), key=lambda c: c["seq"])
            page = rows[:limit]
            has_more = len(rows) > limit
            data = [item(c, detail=False) for c in page]
        next_cursor = _encode_cursor(page[-1]["seq"]) if has_more else None
        return JSONResponse({"data": data, "pagination": {"nextCursor": next_cursor, "hasMore": has_more}})

    async def create(request: Request) -> JSONResponse:
        body = await body_of(request)
        type_name = body.get("type")
        if type_name not in CONFIG_FIELDS:
            return _error(422, "validation_error", "Invalid connector",
                          [{"field": "type", "message": f"must be one of: {', '.join(CONFIG_FIELDS)}"}])
        details = check_fields(body, type_name, creating=True)
        if _str(body.get("collection")):
            details.append({"field": "collection", "message": "is required"})
        if details:
            return _error(422, "validation_error", "Invalid connector", details)
        with store.lock:
            if body["collection"] not in store.data["collections"]:
                return _error(404, "not_found", f"Collection {body['collection']!r} not found")
            now = now_iso()
            store.data["seq"] += 1
            conn = {
                "id": "conn_" + secrets.token_hex(8), "seq": store.data["seq"], "name": body["name"],
                "type": type_name, "collection": body["collection"],
                "config": {**CONFIG_DEFAULTS.get(type_name, {}), **body.get("config", {})},
                "credential_fingerprint": fingerprint(body.get("credentials") or {}),
                "createdAt": now, "updatedAt": now, "jobs": [],
            }
            store.data["connectors"][conn["id"]] = conn
            store.save()
            return JSONResponse({"data": item(conn, detail=True)}, status_code=201)

    def find(request: Request) -> dict[str, Any]:
        conn = store.data["connectors"].get(request.path_params["id"])
        if conn is None:
            raise _Refusal(_error(404, "not_found", f"Connector {request.path_params['id']!r} not found"))
        return conn

    async def get(request: Request) -> JSONResponse:
        with store.lock:
            conn = find(request)
            return JSONResponse({"data": item(conn, detail=True)})

    async def put(request: Request) -> JSONResponse:
        body = await body_of(request)
        with store.lock:
            conn = find(request)
            moved = [f for f in ("type", "collection") if f in body and body[f] != conn[f]]
            if moved:
                return _error(422, "immutable_field", f"{' and '.join(moved)} cannot be changed; create a new connector",
                              [{"field": f, "message": "cannot be changed"} for f in moved])
            details = check_fields(body, conn["type"], creating=False)
            if details:
                return _error(422, "validation_error", "Invalid connector", details)
            if "name" in body:
                conn["name"] = body["name"]
            if "config" in body:
                conn["config"] = {**CONFIG_DEFAULTS.get(conn["type"], {}), **body["config"]}
            if "credentials" in body:
                conn["credential_fingerprint"] = fingerprint(body["credentials"])
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
                return _error(404, "not_found", f"Sync job {request.path_params['job_id']!r} not found")
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
        Route("/v1/connectors", guarded(create), methods=["POST"]),
        Route("/v1/connectors/{id}", guarded(get), methods=["GET"]),
        Route("/v1/connectors/{id}", guarded(put), methods=["PUT"]),
        Route("/v1/connectors/{id}", guarded(delete), methods=["DELETE"]),
        Route("/v1/connectors/{id}/sync", guarded(trigger_sync), methods=["POST"]),
        Route("/v1/connectors/{id}/sync/{job_id}", guarded(get_sync), methods=["GET"]),
    ])
    app.state.store = store
    return app
