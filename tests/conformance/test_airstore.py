"""Conformance: the Airstore emulator answers as the real server does.

Source of every fact: the server's Go source, ``beam-cloud/airstore`` at commit 6abcbac2, read route
by route (not run). Files: ``pkg/api/v1/connections.go`` (handlers), ``pkg/api/v1/middleware.go``
(workspace auth), ``pkg/auth/http.go`` (global token check), ``pkg/api/v1/base.go`` (envelope),
``pkg/types/identity.go`` (``IntegrationConnection`` json tags), ``pkg/repository/integration_postgres.go``
(upsert, list order, lookup by external id), ``pkg/repository/member_postgres.go`` (``GetMember``),
``pkg/repository/backend_postgres_migrations/002_identity.go`` (column types), ``pkg/types/integration.go``
(the registry). Summarised in ``/work/shared/providers.md``, "Real-server facts", Airstore.

In-process (Starlette's TestClient over the emulator's ASGI app): the HTTP path is not the point here.
"""
from __future__ import annotations

import uuid
import warnings

import pytest

with warnings.catch_warnings():  # starlette 1.x asks for httpx2; the installed httpx still drives it fine
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from reconciler.emulators import EmulatorConfig, build

ADMIN = "cluster-admin-token-5b1e"
WS, WS2 = "8a1f0d2e-3b4c-4d5e-8f60-718293a4b5c6", "1c2d3e4f-5061-4728-8394-a5b6c7d8e9f0"
ALICE, BOB, CAROL = (str(uuid.UUID(int=i)) for i in (0xA11CE, 0xB0B, 0xCA401))  # CAROL: admin role
OTHER = str(uuid.UUID(int=0x07E4))  # a member of WS2
ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN, OTHER_TOKEN = "tok-alice-1", "tok-bob-2", "tok-carol-3", "tok-other-4"
BASE = f"/api/v1/workspaces/{WS}/connections"


@pytest.fixture
def api():
    config = EmulatorConfig(api_key=ADMIN, targets=[WS, f"{WS}/{ALICE}", f"{WS}/{BOB}:member", f"{WS}/{CAROL}:admin",
                                                    WS2, f"{WS2}/{OTHER}"],
                            member_tokens={ALICE_TOKEN: ALICE, BOB_TOKEN: BOB, CAROL_TOKEN: CAROL, OTHER_TOKEN: OTHER})
    with TestClient(build("airstore", config), raise_server_exceptions=True) as client:
        yield client


def auth(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(api, body, token: str = ADMIN, path: str = BASE):
    return api.post(path, json=body, headers=auth(token))


GMAIL = {"integration_type": "gmail", "access_token": "ya29.tok", "scope": "https://mail.google.com/"}


def test_routes_are_create_list_delete_only(api):
    """connections.go NewConnectionsGroup: POST "", GET "", DELETE "/:connection_id" — no GET of one
    connection, no update route (a create on the same key is the update)."""
    conn = post(api, GMAIL).json()["data"]
    assert api.get(f"{BASE}/{conn['external_id']}", headers=auth()).status_code == 405
    assert api.put(f"{BASE}/{conn['external_id']}", json=GMAIL, headers=auth()).status_code == 405
    assert api.patch(BASE, json=GMAIL, headers=auth()).status_code == 405


def test_connection_carries_internal_numbers_not_the_callers_ids(api):
    """identity.go IntegrationConnection: ``id``, ``workspace_id``, ``member_id`` are uint (internal);
    ``member_id`` is ``omitempty`` (left out when shared); ``external_id`` is a UUID (002_identity.go)."""
    shared = post(api, GMAIL).json()["data"]
    personal = post(api, {**GMAIL, "member_id": ALICE}).json()["data"]
    for conn in (shared, personal):
        assert isinstance(conn["id"], int) and isinstance(conn["workspace_id"], int)
        assert conn["workspace_id"] != WS
        uuid.UUID(conn["external_id"])
    assert "member_id" not in shared
    assert isinstance(personal["member_id"], int) and personal["member_id"] != ALICE
    assert shared["workspace_id"] == personal["workspace_id"]


def test_connection_body_fields(api):
    """identity.go json tags: scope and expires_at ``omitempty``; Credentials ``json:"-"``; no status
    field; extra lives inside the credentials blob and is never serialised."""
    full = post(api, {**GMAIL, "refresh_token": "1//r", "extra": {"label": "INBOX"}}).json()["data"]
    assert set(full) == {"id", "external_id", "workspace_id", "integration_type", "scope", "created_at", "updated_at"}
    bare = post(api, {"integration_type": "github", "access_token": "ghp_x"}).json()["data"]
    assert "scope" not in bare and "expires_at" not in bare
    listed = api.get(BASE, headers=auth()).json()["data"]
    assert all(not {"status", "extra", "access_token", "refresh_token", "api_key", "credentials"} & set(c)
               for c in listed)
    assert "ya29.tok" not in api.get(BASE, headers=auth()).text


def test_upsert_replaces_and_keeps_identity(api):
    """integration_postgres.go SaveConnection: INSERT ... ON CONFLICT (workspace_id, COALESCE(member_id, 0),
    integration_type) DO UPDATE SET credentials, scope, expires_at, updated_at — id, external_id and
    created_at kept; the handler answers 201 either way; credentials left out are cleared."""
    first = post(api, {**GMAIL, "refresh_token": "1//r", "extra": {"a": "1"}})
    second = post(api, {"integration_type": "gmail", "access_token": "ya29.new"})
    assert first.status_code == second.status_code == 201
    a, b = first.json()["data"], second.json()["data"]
    assert (a["id"], a["external_id"], a["created_at"]) == (b["id"], b["external_id"], b["created_at"])
    assert "scope" not in b and b["updated_at"] >= a["updated_at"]
    record = api.get("/_emulator/state").json()["connections"][a["external_id"]]
    assert record["credential_fields"] == ["access_token"] and record["extra_keys"] == []
    # shared and each member's are distinct keys
    personal = post(api, {**GMAIL, "member_id": ALICE}).json()["data"]
    assert personal["external_id"] != a["external_id"] and len(api.get(BASE, headers=auth()).json()["data"]) == 2


@pytest.mark.parametrize("content, ctype", [(b'{"integration_type": "gmail"', "application/json"),
                                            (b"integration_type=gmail&access_token=x", "application/x-www-form-urlencoded"),
                                            (b'{"integration_type": "gmail", "access_token": "x"}', "text/plain"),
                                            (b'["gmail"]', "application/json"),
                                            (b'{"integration_type": "gmail", "access_token": "x", "extra": {"n": 1}}',
                                             "application/json")])
def test_unparsable_or_non_json_body_is_invalid_request(api, content, ctype):
    """connections.go Create: ``c.Bind(&req)`` fails (echo's binder: JSON only for this struct, types
    checked) -> 400 ``invalid request``, before any other check."""
    r = api.post(BASE, content=content,
                 headers={**auth(), "content-type": ctype})
    assert (r.status_code, r.json()) == (400, {"success": False, "error": "invalid request"})


def test_unknown_fields_are_ignored(api):
    """encoding/json into CreateConnectionRequest drops unknown keys."""
    r = post(api, {**GMAIL, "status": "paused", "name": "x", "workspace_id": 99})
    assert r.status_code == 201 and "status" not in r.json()["data"]


def test_check_order_integration_type_then_credentials_then_workspace(api):
    """connections.go Create: integration_type required, then access_token or api_key required (both
    before the member checks); the admin token's workspace lookup (middleware.go) precedes them all."""
    r = post(api, {"access_token": "x"}, path="/api/v1/workspaces/ws-nope/connections")
    assert (r.status_code, r.json()["error"]) == (404, "workspace not found")
    r = post(api, {"access_token": "x", "member_id": "not-a-uuid"})
    assert (r.status_code, r.json()) == (400, {"success": False, "error": "integration_type required"})
    r = post(api, {"integration_type": "gmail", "refresh_token": "r", "member_id": "not-a-uuid"})
    assert (r.status_code, r.json()) == (400, {"success": False, "error": "access_token or api_key required"})


@pytest.mark.parametrize("integration", ["weather", "exa", "posthog", "my-own-tool", "x" * 50])
def test_any_integration_type_up_to_50_characters(api, integration):
    """connections.go has no allow-list (only ``== ""``); the column is VARCHAR(50) (002_identity.go).
    The registry (integration.go) lists weather and exa as API-key integrations and no posthog."""
    r = post(api, {"integration_type": integration, "api_key": "k-1"})
    assert r.status_code == 201 and r.json()["data"]["integration_type"] == integration


def test_too_long_values_are_permanent_500s_with_the_raw_text(api):
    """SaveConnection's error goes out as ``err.Error()`` with 500: a 51-character integration_type or a
    scope over VARCHAR(512) fails the INSERT every time."""
    r = post(api, {"integration_type": "x" * 51, "api_key": "k"})
    assert (r.status_code, r.json()) == (500, {"success": False, "error":
                                               "save connection: pq: value too long for type character varying(50)"})
    r = post(api, {**GMAIL, "scope": "s" * 513})
    assert r.status_code == 500 and r.json()["error"].endswith("character varying(512)")
    assert post(api, {**GMAIL, "scope": "s" * 512}).status_code == 201


def test_member_checks(api):
    """connections.go Create, personal branch: GetMember (a non-UUID fails the UUID column: 500 with the
    text), nil -> 404 ``member not found``, other workspace -> 400 ``member not in workspace``, another
    member without admin -> 403 ``cannot create connection for another member``."""
    r = post(api, {**GMAIL, "member_id": "mem_alice"})
    assert r.status_code == 500 and r.json()["error"] == 'get member: pq: invalid input syntax for type uuid: "mem_alice"'
    r = post(api, {**GMAIL, "member_id": str(uuid.uuid4())})
    assert (r.status_code, r.json()["error"]) == (404, "member not found")
    r = post(api, {**GMAIL, "member_id": OTHER})
    assert (r.status_code, r.json()["error"]) == (400, "member not in workspace")
    r = post(api, {**GMAIL, "member_id": ALICE}, token=BOB_TOKEN)
    assert (r.status_code, r.json()["error"]) == (403, "cannot create connection for another member")
    assert post(api, {**GMAIL, "member_id": BOB}, token=BOB_TOKEN).status_code == 201


def test_shared_needs_admin_and_admin_is_cluster_token_or_admin_role(api):
    """connections.go: shared branch ``!auth.IsAdmin(ctx)`` -> 403 ``admin access required for shared
    connections``; IsAdmin = the cluster admin token or a member whose role is admin."""
    r = post(api, GMAIL, token=BOB_TOKEN)
    assert (r.status_code, r.json()) == (403, {"success": False, "error": "admin access required for shared connections"})
    assert post(api, GMAIL, token=CAROL_TOKEN).status_code == 201
    assert post(api, {**GMAIL, "member_id": ALICE}, token=CAROL_TOKEN).status_code == 201


def test_list_order_no_paging_and_everyones_connections(api):
    """integration_postgres.go ListConnections: ``ORDER BY integration_type, member_id NULLS FIRST``, no
    LIMIT; any workspace token sees the members' personal connections too."""
    for body in ({**GMAIL, "member_id": BOB}, {"integration_type": "github", "access_token": "g"},
                 {**GMAIL, "member_id": ALICE}, GMAIL):
        assert post(api, body).status_code == 201
    r = api.get(BASE, headers=auth(BOB_TOKEN))
    assert r.status_code == 200 and r.json()["success"] is True
    rows = [(c["integration_type"], c.get("member_id")) for c in r.json()["data"]]
    members = api.get("/_emulator/state").json()["members"]
    alice, bob = members[ALICE]["id"], members[BOB]["id"]
    assert rows == [("github", None), ("gmail", None)] + sorted([("gmail", alice), ("gmail", bob)], key=lambda x: x[1])


def test_empty_list_is_data_null(api):
    """connections.go List returns a nil slice in Response.Data (an interface, so ``omitempty`` keeps
    it): ``"data": null``."""
    r = api.get(BASE, headers=auth())
    assert (r.status_code, r.json()) == (200, {"success": True, "data": None})


def test_delete_by_external_id_alone(api):
    """connections.go Delete: GetConnectionByExternalId(ctx, connId) — no workspace condition; 200
    ``{"success": true}``; missing -> 404 ``connection not found``; a non-UUID id fails the column: 500."""
    conn = post(api, GMAIL).json()["data"]
    # listed and deleted through another workspace's path: the lookup ignores it
    r = api.delete(f"/api/v1/workspaces/{WS2}/connections/{conn['external_id']}", headers=auth())
    assert (r.status_code, r.json()) == (200, {"success": True})
    again = api.delete(f"{BASE}/{conn['external_id']}", headers=auth())
    assert (again.status_code, again.json()) == (404, {"success": False, "error": "connection not found"})
    bad = api.delete(f"{BASE}/conn_123", headers=auth())
    assert bad.status_code == 500 and "invalid input syntax for type uuid" in bad.json()["error"]


def test_delete_rights(api):
    """connections.go Delete at 6abcbac2: shared -> admin only (403 ``admin access required for shared
    connections``); personal -> admin or owner (403 ``cannot delete another member's connection``)."""
    shared = post(api, GMAIL).json()["data"]["external_id"]
    alices = post(api, {**GMAIL, "member_id": ALICE}).json()["data"]["external_id"]
    r = api.delete(f"{BASE}/{shared}", headers=auth(BOB_TOKEN))
    assert (r.status_code, r.json()["error"]) == (403, "admin access required for shared connections")
    r = api.delete(f"{BASE}/{alices}", headers=auth(BOB_TOKEN))
    assert (r.status_code, r.json()["error"]) == (403, "cannot delete another member's connection")
    assert api.delete(f"{BASE}/{alices}", headers=auth(ALICE_TOKEN)).status_code == 200
    assert api.delete(f"{BASE}/{shared}", headers=auth(CAROL_TOKEN)).status_code == 200


def test_auth_answers(api):
    """middleware.go: no token -> 401 ``authorization required``; a token of another workspace -> 403
    ``token does not have access to this workspace``. auth/http.go (runs first): a bad token -> 401
    ``{"error": "invalid token"}``, written with c.JSON of a map: no ``success`` field."""
    r = api.get(BASE)
    assert (r.status_code, r.json()) == (401, {"success": False, "error": "authorization required"})
    r = api.get(BASE, headers=auth("not-a-token"))
    assert (r.status_code, r.json()) == (401, {"error": "invalid token"})
    r = api.get(BASE, headers=auth(OTHER_TOKEN))
    assert (r.status_code, r.json()) == (403, {"success": False, "error": "token does not have access to this workspace"})
    r = api.get("/api/v1/workspaces/ws-nope/connections", headers=auth())
    assert (r.status_code, r.json()) == (404, {"success": False, "error": "workspace not found"})


def test_no_rate_limit_on_connection_routes(api):
    """The connections group (gateway route setup, ``NewWorkspaceAuthMiddleware`` only) has no rate
    limiter: a burst is answered in full."""
    codes = {api.get(BASE, headers=auth()).status_code for _ in range(250)}
    assert codes == {200}
