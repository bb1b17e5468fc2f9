"""Airstore emulator: workspace connections as the open-source Go server answers them.

Source: ``beam-cloud/airstore`` at commit 6abcbac2, read route by route (``pkg/api/v1/connections.go``,
``pkg/api/v1/middleware.go``, ``pkg/auth/http.go``, ``pkg/api/v1/base.go``,
``pkg/repository/integration_postgres.go``, ``pkg/repository/member_postgres.go``,
``pkg/types/identity.go`` (``IntegrationConnection``),
``pkg/repository/backend_postgres_migrations/002_identity.go``). Paths:
``/api/v1/workspaces/{workspace_id}/connections`` POST (upsert, 201), GET (list, no paging),
``DELETE .../{external_id}``. Envelope ``{"success": true, "data": ...}`` (``data`` left out when
nil, ``null`` for an empty list); errors ``{"success": false, "error": "message"}``.

What the server does and the emulator reproduces:
- Connections carry the server's own numbers: ``id``, ``workspace_id`` and ``member_id`` are
  internal integers (``member_id`` absent for a shared connection), ``external_id`` a UUID.
  ``scope`` is left out when empty and ``expires_at`` always (the API never sets it). No
  ``status``; credentials and ``extra`` are never returned.
- The upsert key is (workspace, member or none, integration type): a second POST replaces the
  credentials with their ``extra``, the scope and ``expires_at``, keeps ``id``, ``external_id`` and
  ``created_at``, and answers 201 again.
- POST checks, in the handler's order: body not JSON 400 ``invalid request``; no
  ``integration_type`` 400; neither ``access_token`` nor ``api_key`` 400; unknown workspace 404;
  member: not a UUID 500 (Postgres' own text), unknown 404, of another workspace 400, another
  member's without admin rights 403; shared without admin rights 403; then the store:
  ``integration_type`` over VARCHAR(50) or ``scope`` over VARCHAR(512) 500 with the raw text.
- Auth: the configured api key is the cluster admin token. A member token acts as that member of
  its workspace; a member whose role is ``admin`` has admin rights. No token 401 ``authorization
  required``; an unknown token 401 ``{"error": "invalid token"}`` (the global auth middleware's
  body: no ``success``); a token of another workspace 403.
- Delete looks the connection up by ``external_id`` alone (not a UUID: 500), whatever the path's
  workspace; shared ones need admin rights, personal ones admin or their own member.

Where the emulator must stand in for parts of the server it does not have (a members API, token
issuing), ``EmulatorConfig`` says what exists: ``targets`` entries ``WS`` (a workspace),
``WS/MEMBER`` or ``WS/MEMBER:ROLE`` (a member of WS with that external id, role ``member`` by
default) and ``WS/*`` (any UUID member id used in WS is taken as a member of WS at its first use,
for tests whose manifests invent members); ``member_tokens`` maps a token to a member external id.
``POST /_emulator/members`` (test-only) creates a member and a token for it. Workspace ids are taken
as given (the real ones are UUIDs; a non-UUID one is simply unknown there, 404 either way).

The store keeps keyed fingerprints of the credentials and of ``extra`` (the key lives only in the
process), never their values, so tests can see a replacement without the emulator holding a
secret to leak.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from .base import EmulatorConfig, JSONResponse, Store, now_iso

CREDENTIAL_FIELDS = ("access_token", "refresh_token", "api_key")
ROLES = ("admin", "member", "viewer")  # 002_identity.go: member_role enum
INTEGRATION_TYPE_MAX = 50  # integration_connection.integration_type VARCHAR(50)
SCOPE_MAX = 512  # integration_connection.scope VARCHAR(512)


def _ok(data: Any = None, status: int = 200, *, with_data: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"success": True}
    if data is not None or with_data:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "error": message}, status_code=status)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _uuid_syntax(what: str, value: str) -> JSONResponse:
    # Postgres refuses a non-UUID against a UUID column; the handler passes err.Error() through
    return _err(500, f'{what}: pq: invalid input syntax for type uuid: "{value}"')


def _fingerprint(salt: str, values: dict[str, str]) -> str:
    payload = json.dumps(values, sort_keys=True).encode()
    return hmac.new(salt.encode(), payload, hashlib.sha256).hexdigest()


class _Caller:
    """Who is calling: the cluster admin token, or a member (admin rights when its role is admin)."""

    def __init__(self, admin: bool, member: str | None = None) -> None:
        self.admin = admin
        self.member = member


def parse_target(spec: str) -> tuple[str, str | None, str]:
    """``WS`` | ``WS/MEMBER`` | ``WS/MEMBER:ROLE`` | ``WS/*`` -> (workspace, member or None, role)."""
    workspace, _, rest = spec.partition("/")
    if not rest:
        return workspace, None, ""
    member, _, role = rest.partition(":")
    return workspace, member, role or "member"


def create_app(config: EmulatorConfig) -> Starlette:
    store = Store("airstore", config.data_dir, {
        "workspaces": {},  # external id -> {"id": int, "open": bool}
        "members": {},  # external id (UUID) -> {"id": int, "workspace": ws external id, "role": str}
        "member_tokens": {},  # token -> member external id
        "connections": {},  # external_id -> record (fingerprints only)
        "next": {"workspace": 1, "member": 1, "connection": 1},
    })
    # per process and never stored: a fingerprint only shows that something changed
    salt = secrets.token_hex(16)

    def next_id(kind: str) -> int:
        n = store.data["next"][kind]
        store.data["next"][kind] = n + 1
        return n

    def add_workspace(ws: str) -> dict[str, Any]:
        if ws not in store.data["workspaces"]:
            store.data["workspaces"][ws] = {"id": next_id("workspace"), "open": False}
        return store.data["workspaces"][ws]

    def add_member(ws: str, member: str, role: str) -> dict[str, Any]:
        if role not in ROLES:
            raise ValueError(f"airstore emulator: member role {role!r} is not one of {', '.join(ROLES)}")
        add_workspace(ws)
        known = store.data["members"].get(member)
        if known is None:
            known = store.data["members"][member] = {"id": next_id("member"), "workspace": ws, "role": role}
        return known

    with store.lock:
        for spec in config.targets:
            ws, member, role = parse_target(spec)
            add_workspace(ws)
            if member == "*":
                store.data["workspaces"][ws]["open"] = True
            elif member:
                if not _is_uuid(member):
                    raise ValueError(f"airstore emulator: member {member!r} of target {spec!r} is not a UUID "
                                     "(the server's member external ids are UUIDs)")
                add_member(ws, member, role)
        for token, member in config.member_tokens.items():
            if member not in store.data["members"]:
                raise ValueError(f"airstore emulator: member token for unknown member {member!r}; "
                                 "declare it as a target WS/MEMBER first")
            store.data["member_tokens"][token] = member
        store.save()

    def authenticate(request: Request, workspace: str) -> _Caller | JSONResponse:
        """pkg/auth/http.go (global) then pkg/api/v1/middleware.go (workspace routes)."""
        token = request.headers.get("authorization", "")
        token = token[len("Bearer "):] if token.startswith("Bearer ") else token
        if token and hmac.compare_digest(token.encode(), config.api_key.encode()):
            if workspace not in store.data["workspaces"]:
                return _err(404, "workspace not found")
            return _Caller(admin=True)
        if not token:
            return _err(401, "authorization required")
        member_id = store.data["member_tokens"].get(token)
        member = store.data["members"].get(member_id) if member_id else None
        if member is None:
            return JSONResponse({"error": "invalid token"}, status_code=401)
        if member["workspace"] != workspace:
            return _err(403, "token does not have access to this workspace")
        return _Caller(admin=member["role"] == "admin", member=member_id)

    def serialize(conn: dict[str, Any]) -> dict[str, Any]:
        """json tags of types.IntegrationConnection: omitempty on member_id, scope, expires_at."""
        out: dict[str, Any] = {
            "id": conn["id"],
            "external_id": conn["external_id"],
            "workspace_id": store.data["workspaces"][conn["workspace"]]["id"],
        }
        if conn["member"] is not None:
            out["member_id"] = store.data["members"][conn["member"]]["id"]
        out["integration_type"] = conn["integration_type"]
        if conn["scope"]:
            out["scope"] = conn["scope"]
        out["created_at"] = conn["created_at"]
        out["updated_at"] = conn["updated_at"]
        return out

    async def read_body(request: Request) -> dict[str, Any] | JSONResponse:
        """echo's DefaultBinder: no body binds nothing; a body must be JSON into the request struct."""
        raw = await request.body()
        if not raw:
            return {}
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _err(400, "invalid request")
        try:
            body = json.loads(raw)
        except ValueError:
            return _err(400, "invalid request")
        if not isinstance(body, dict) or not _well_typed(body):
            return _err(400, "invalid request")
        return body

    async def create(request: Request) -> JSONResponse:
        workspace = request.path_params["workspace_id"]
        with store.lock:
            caller = authenticate(request, workspace)
        if isinstance(caller, JSONResponse):
            return caller
        body = await read_body(request)
        if isinstance(body, JSONResponse):
            return body
        integration = body.get("integration_type") or ""
        if not integration:
            return _err(400, "integration_type required")
        if not body.get("access_token") and not body.get("api_key"):
            return _err(400, "access_token or api_key required")
        member = body.get("member_id") or ""
        with store.lock:
            data = store.data
            ws = data["workspaces"].get(workspace)
            if ws is None:
                return _err(404, "workspace not found")
            if member:
                if not _is_uuid(member):
                    return _uuid_syntax("get member", member)
                if member not in data["members"] and ws["open"]:
                    add_member(workspace, member, "member")
                known = data["members"].get(member)
                if known is None:
                    return _err(404, "member not found")
                if known["workspace"] != workspace:
                    return _err(400, "member not in workspace")
                if not caller.admin and caller.member != member:
                    return _err(403, "cannot create connection for another member")
            elif not caller.admin:
                return _err(403, "admin access required for shared connections")
            scope = body.get("scope") or ""
            # the INSERT fails on the first over-long column: integration_type comes before scope
            for value, limit in ((integration, INTEGRATION_TYPE_MAX), (scope, SCOPE_MAX)):
                if len(value) > limit:
                    return _err(500, f"save connection: pq: value too long for type character varying({limit})")
            creds = {k: body[k] for k in CREDENTIAL_FIELDS if body.get(k)}
            extra = {str(k): v for k, v in (body.get("extra") or {}).items()}
            now = now_iso()
            existing = next((c for c in data["connections"].values()
                             if c["workspace"] == workspace and c["member"] == (member or None)
                             and c["integration_type"] == integration), None)
            if existing is None:
                existing = {
                    "id": next_id("connection"),
                    "external_id": str(uuid.uuid4()),
                    "workspace": workspace,
                    "member": member or None,
                    "integration_type": integration,
                    "created_at": now,
                }
                data["connections"][existing["external_id"]] = existing
            existing.update({
                "scope": scope,
                "credential_fields": sorted(creds),
                "credential_fingerprint": _fingerprint(salt, creds),
                "extra_keys": sorted(extra),
                "extra_fingerprint": _fingerprint(salt, extra),
                "updated_at": now,
            })
            store.save()
            return _ok(serialize(existing), 201)

    async def list_(request: Request) -> JSONResponse:
        workspace = request.path_params["workspace_id"]
        with store.lock:
            caller = authenticate(request, workspace)
            if isinstance(caller, JSONResponse):
                return caller
            if workspace not in store.data["workspaces"]:
                return _err(404, "workspace not found")
            members = store.data["members"]
            # ORDER BY integration_type, member_id NULLS FIRST
            rows = sorted((c for c in store.data["connections"].values() if c["workspace"] == workspace),
                          key=lambda c: (c["integration_type"],
                                         -1 if c["member"] is None else members[c["member"]]["id"]))
            conns = [serialize(c) for c in rows]
        # a nil Go slice in Response.Data (an interface, so not "empty"): "data": null
        return _ok(conns or None, with_data=True)

    async def delete(request: Request) -> JSONResponse:
        workspace = request.path_params["workspace_id"]
        conn_id = request.path_params["connection_id"]
        with store.lock:
            caller = authenticate(request, workspace)
            if isinstance(caller, JSONResponse):
                return caller
            if not _is_uuid(conn_id):
                return _uuid_syntax("get connection by external id", conn_id)
            conn = store.data["connections"].get(conn_id)
            if conn is None:
                return _err(404, "connection not found")
            if conn["member"] is None:
                if not caller.admin:
                    return _err(403, "admin access required for shared connections")
            elif not caller.admin and caller.member != conn["member"]:
                return _err(403, "cannot delete another member's connection")
            del store.data["connections"][conn_id]
            store.save()
        return _ok()

    async def mint_member(request: Request) -> JSONResponse:
        """Test-only: a member of a workspace (``member_id`` generated unless given) and a token for it."""
        body = await request.json()
        workspace = body["workspace_id"]
        member = body.get("member_id") or str(uuid.uuid4())
        role = body.get("role") or "member"
        with store.lock:
            if workspace not in store.data["workspaces"]:
                return _err(404, "workspace not found")
            known = store.data["members"].get(member)
            if known is not None and known["workspace"] != workspace:
                return _err(400, "member not in workspace")
            if known is None:
                if not _is_uuid(member) or role not in ROLES:
                    return _err(400, "invalid request")
                known = add_member(workspace, member, role)
            token = "mt_" + secrets.token_hex(12)
            store.data["member_tokens"][token] = member
            store.save()
        return _ok({"member_id": member, "id": known["id"], "role": known["role"], "token": token}, 201)

    base = "/api/v1/workspaces/{workspace_id}/connections"
    app = Starlette(routes=[
        Route(base, create, methods=["POST"]),
        Route(base, list_, methods=["GET"]),
        Route(base + "/{connection_id}", delete, methods=["DELETE"]),
        Route("/_emulator/members", mint_member, methods=["POST"]),
    ])
    app.state.store = store
    return app


def _well_typed(body: dict[str, Any]) -> bool:
    """What Go's JSON decoding into CreateConnectionRequest accepts: strings (or null) and a string map."""
    for key in ("member_id", "integration_type", "scope", *CREDENTIAL_FIELDS):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            return False
    extra = body.get("extra")
    if extra is not None and not (isinstance(extra, dict) and all(isinstance(v, str) for v in extra.values())):
        return False
    return True
