"""Airstore emulator: workspace connections, modelled on the open-source Go server (pkg/api/v1).

Paths: ``/api/v1/workspaces/{workspace_id}/connections`` POST (upsert, 201), GET (list, no paging),
``DELETE .../{connection_id}`` (the ``external_id``). Envelope ``{"success": true, "data": ...}``;
errors ``{"success": false, "error": "message"}``.

Auth, as the server's workspace middleware does it: the configured api key is the cluster admin
token (any workspace, shared and personal connections). A member token, minted for tests through
``POST /_emulator/members``, may act only in its own workspace and only on its own personal
connections (403 otherwise). No token or an unknown token is 401 ``authorization required`` /
``invalid token``; an unknown workspace is 404 ``workspace not found``.

Faithful details (and where the emulator differs on purpose):
- The upsert key is (workspace, member, integration_type): a second POST replaces credentials,
  scope and ``extra`` and keeps ``external_id``, bumping ``updated_at``.
- A connection's JSON carries ``id`` (internal number), ``external_id``, ``workspace_id``,
  ``integration_type``, ``scope`` (string, ``""`` when unset), ``created_at``, ``updated_at``,
  ``status`` ("active"), ``member_id`` for personal connections and ``extra`` when non-empty. Like the
  real server, ``extra`` echoes the caller's extra fields plus server annotations (here
  ``granted_scopes``: the scope string parsed into a list). Credentials are never returned.
- The real server answers ``member_id`` with its internal numeric member id; the emulator answers
  with the member id the caller sent, because there is no member directory to resolve it against.
  Any member id names a member of the first workspace it is used in (using it in another workspace
  is 400 ``member not in workspace``, as on the server).
- ``integration_type`` must be one of the documented types (the SDK's ``IntegrationType``); the Go
  handler only requires it to be non-empty.
- The store keeps a keyed fingerprint of the credentials (the key lives only in the process), never
  their values, so that tests can see a rotation without the emulator holding a secret to leak.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .base import EmulatorConfig, Store, now_iso

INTEGRATION_TYPES = frozenset({"gmail", "gdrive", "github", "notion", "linear", "slack", "posthog"})
CREDENTIAL_FIELDS = ("access_token", "refresh_token", "api_key")


def _ok(data: Any, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"success": True}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "error": message}, status_code=status)


class _Caller:
    """Who is calling: the admin token, or a member token bound to one workspace."""

    def __init__(self, admin: bool, workspace: str | None = None, member: str | None = None) -> None:
        self.admin = admin
        self.workspace = workspace
        self.member = member


def _fingerprint(salt: str, creds: dict[str, str]) -> str:
    payload = json.dumps(creds, sort_keys=True).encode()
    return hmac.new(salt.encode(), payload, hashlib.sha256).hexdigest()


def _parse_scopes(scope: str) -> list[str]:
    return [s for s in re.split(r"[\s,]+", scope) if s]


def create_app(config: EmulatorConfig) -> Starlette:
    store = Store("airstore", config.data_dir, {
        "workspaces": {},  # external id -> {"id": int}
        "members": {},  # member id -> workspace external id
        "member_tokens": {},  # token -> {"workspace": ..., "member": ...}
        "connections": {},  # external_id -> record (credential fingerprint only)
        "next_id": 1,
    })
    # per process and never stored: the fingerprint only shows that credentials changed
    salt = secrets.token_hex(16)
    with store.lock:
        for ws in config.targets:
            if ws not in store.data["workspaces"]:
                store.data["workspaces"][ws] = {"id": len(store.data["workspaces"]) + 1}
        store.save()

    def authenticate(request: Request, workspace: str) -> _Caller | JSONResponse:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else header
        if token and hmac.compare_digest(token.encode(), config.api_key.encode()):
            if workspace not in store.data["workspaces"]:
                return _err(404, "workspace not found")
            return _Caller(admin=True, workspace=workspace)
        if not token:
            return _err(401, "authorization required")
        info = store.data["member_tokens"].get(token)
        if info is None:
            return _err(401, "invalid token")
        if info["workspace"] != workspace:
            return _err(403, "token does not have access to this workspace")
        return _Caller(admin=False, workspace=workspace, member=info["member"])

    def serialize(conn: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": conn["id"],
            "external_id": conn["external_id"],
            "workspace_id": conn["workspace_id"],
            "integration_type": conn["integration_type"],
            "scope": conn["scope"],
            "created_at": conn["created_at"],
            "updated_at": conn["updated_at"],
            "status": "active",
        }
        if conn["member_id"]:
            out["member_id"] = conn["member_id"]
        extra: dict[str, Any] = dict(conn["extra"])
        granted = _parse_scopes(conn["scope"])
        if granted:
            extra["granted_scopes"] = granted
        if extra:
            out["extra"] = extra
        return out

    async def create(request: Request) -> JSONResponse:
        workspace = request.path_params["workspace_id"]
        with store.lock:
            caller = authenticate(request, workspace)
            if isinstance(caller, JSONResponse):
                return caller
        try:
            body = await request.json()
        except ValueError:
            return _err(400, "invalid request")
        if not isinstance(body, dict) or not _well_typed(body):
            return _err(400, "invalid request")
        integration = body.get("integration_type") or ""
        if not integration:
            return _err(400, "integration_type required")
        if integration not in INTEGRATION_TYPES:
            return _err(400, f"unsupported integration_type {integration!r}; one of: {', '.join(sorted(INTEGRATION_TYPES))}")
        if not body.get("access_token") and not body.get("api_key"):
            return _err(400, "access_token or api_key required")
        member = body.get("member_id") or ""
        with store.lock:
            data = store.data
            if member:
                home = data["members"].setdefault(member, workspace)
                if home != workspace:
                    return _err(400, "member not in workspace")
                if not caller.admin and caller.member != member:
                    return _err(403, "cannot create connection for another member")
            elif not caller.admin:
                return _err(403, "admin access required for shared connections")
            creds = {k: body[k] for k in CREDENTIAL_FIELDS if body.get(k)}
            scope = body.get("scope") or ""
            extra = dict(body.get("extra") or {})
            now = now_iso()
            existing = next((c for c in data["connections"].values()
                             if c["workspace_id"] == workspace and c["member_id"] == member
                             and c["integration_type"] == integration), None)
            if existing is None:
                existing = {
                    "id": data["next_id"],
                    "external_id": "conn_" + secrets.token_hex(8),
                    "workspace_id": workspace,
                    "member_id": member,
                    "integration_type": integration,
                    "created_at": now,
                }
                data["next_id"] += 1
                data["connections"][existing["external_id"]] = existing
            existing.update({
                "scope": scope,
                "extra": extra,
                "credential_fields": sorted(creds),
                "credential_fingerprint": _fingerprint(salt, creds),
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
            conns = [serialize(c) for c in store.data["connections"].values() if c["workspace_id"] == workspace]
        return _ok(conns)

    async def delete(request: Request) -> JSONResponse:
        workspace = request.path_params["workspace_id"]
        conn_id = request.path_params["connection_id"]
        with store.lock:
            caller = authenticate(request, workspace)
            if isinstance(caller, JSONResponse):
                return caller
            # the server looks the connection up by external id alone, as here
            conn = store.data["connections"].get(conn_id)
            if conn is None:
                return _err(404, "connection not found")
            if conn["member_id"] and not caller.admin and caller.member != conn["member_id"]:
                return _err(403, "cannot delete another member's connection")
            del store.data["connections"][conn_id]
            store.save()
        return _ok(None)

    async def mint_member_token(request: Request) -> JSONResponse:
        """Test-only: a member token for (workspace, member), as the server's token API would issue."""
        body = await request.json()
        workspace, member = body["workspace_id"], body["member_id"]
        with store.lock:
            if workspace not in store.data["workspaces"]:
                return _err(404, "workspace not found")
            if store.data["members"].setdefault(member, workspace) != workspace:
                return _err(400, "member not in workspace")
            token = "mt_" + secrets.token_hex(12)
            store.data["member_tokens"][token] = {"workspace": workspace, "member": member}
            store.save()
        return _ok({"token": token}, 201)

    base = "/api/v1/workspaces/{workspace_id}/connections"
    app = Starlette(routes=[
        Route(base, create, methods=["POST"]),
        Route(base, list_, methods=["GET"]),
        Route(base + "/{connection_id}", delete, methods=["DELETE"]),
        Route("/_emulator/members", mint_member_token, methods=["POST"]),
    ])
    app.state.store = store
    return app


def _well_typed(body: dict[str, Any]) -> bool:
    """What Go's JSON binding into CreateConnectionRequest accepts: strings and a string map."""
    for key in ("member_id", "integration_type", "scope", *CREDENTIAL_FIELDS):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            return False
    extra = body.get("extra")
    if extra is not None and not (isinstance(extra, dict) and all(isinstance(v, str) for v in extra.values())):
        return False
    return True
