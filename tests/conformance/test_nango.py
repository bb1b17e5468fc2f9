"""The Nango emulator reproduces the real server, one test per known fact.

Sources, named on each test:
- "real server v0.71.4": Nango v0.71.4 built from source and run on loopback with PostgreSQL
  (``shared/providers.md``, "Real-server facts", Nango);
- ``NangoHQ/nango`` paths: the server's source, read through the project's code search
  (``packages/server/lib/controllers/sync/putSyncConnectionFrequency.ts`` @758d6e5c,
  ``.../sync/getSyncStatus.ts`` @05d52bb8, ``.../sync/postTrigger.ts`` @0f616f0f,
  ``packages/server/lib/middleware/ratelimit.middleware.ts`` @05d52bb8);
- ``specs/nango-openapi.yaml``: the platform's own OpenAPI document.

In process (starlette's TestClient over the full ASGI app, fault middleware included): the HTTP
path is not the point here, the answers are.
"""
from __future__ import annotations

import time
import uuid
import warnings

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; the httpx transport works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from reconciler.emulators import EmulatorConfig
from reconciler.emulators.base import build

KEY = "conformance-key"
PCK = "github-prod"  # OAUTH2, syncs issues (every hour) and pull-requests (every 6 hours)
OAUTH = {"type": "OAUTH2", "access_token": "at-secret"}


def client(**config) -> TestClient:
    config.setdefault("sync_creation_delay", 0.0)
    cfg = EmulatorConfig(api_key=KEY, targets=[PCK, "posthog-prod", "zoom-prod"], **config)
    return TestClient(build("nango", cfg), headers={"Authorization": f"Bearer {KEY}"})


@pytest.fixture
def api() -> TestClient:
    return client()


def create(api: TestClient, cid: str = "acme", pck: str = PCK, **extra):
    return api.post("/connections", json={"provider_config_key": pck, "connection_id": cid,
                                          "credentials": extra.pop("credentials", OAUTH), **extra})


def code(response) -> str:
    return response.json()["error"]["code"]


def status(api: TestClient, cid: str = "acme", pck: str = PCK, **params):
    return api.get("/sync/status", params={"provider_config_key": pck, "syncs": "*", "connection_id": cid, **params})


def set_frequency(api: TestClient, frequency, sync: str = "issues", cid: str = "acme"):
    return api.put("/sync/update-connection-frequency", json={
        "provider_config_key": PCK, "connection_id": cid, "sync_name": sync, "frequency": frequency})


# -- connections ---------------------------------------------------------------------------------
def test_create_answers_201(api):
    """real server v0.71.4: POST /connections answers 201 (the spec says 200)."""
    r = create(api)
    assert r.status_code == 201 and r.json()["connection_id"] == "acme"
    assert create(api).status_code == 201  # the upsert of an existing one too


def test_new_connections_syncs_appear_after_a_delay():
    """real server v0.71.4 and NangoHQ/nango putSyncConnectionFrequency.ts: the syncs are created in
    the background after the create answered; a frequency PUT before then is 400 unknown_sync."""
    api = client(sync_creation_delay=0.3)
    assert create(api).status_code == 201
    early = set_frequency(api, "every 2 hours")
    assert early.status_code == 400 and early.json() == {"error": {"code": "unknown_sync"}}
    assert status(api).json() == {"syncs": []}
    deadline = time.monotonic() + 3
    while not status(api).json()["syncs"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(s["name"] for s in status(api).json()["syncs"]) == ["issues", "pull-requests"]
    assert set_frequency(api, "every 2 hours").status_code == 200


def test_sync_creation_delay_defaults_to_about_a_second():
    """real server v0.71.4: the background creation takes about a second (the emulator's default)."""
    assert 0.5 <= EmulatorConfig().sync_creation_delay <= 2.0


def test_delete_of_a_missing_connection_is_400_unknown_connection(api):
    """real server v0.71.4: DELETE of a connection that is gone is 400 unknown_connection, not 404."""
    create(api)
    assert api.delete("/connections/acme", params={"provider_config_key": PCK}).status_code == 200
    again = api.delete("/connections/acme", params={"provider_config_key": PCK})
    assert again.status_code == 400 and code(again) == "unknown_connection"


def test_get_and_patch_of_a_missing_connection_are_404_not_found(api):
    """real server v0.71.4: GET or PATCH /connections/{id} of an unknown connection: 404 not_found."""
    got = api.get("/connections/ghost", params={"provider_config_key": PCK})
    assert got.status_code == 404 and code(got) == "not_found"
    patched = api.patch("/connections/ghost", params={"provider_config_key": PCK}, json={"tags": {"a": "b"}})
    assert patched.status_code == 404 and code(patched) == "not_found"


def test_get_without_provider_config_key_is_400_invalid_query_params(api):
    """real server v0.71.4: GET /connections/{id} without provider_config_key: 400 invalid_query_params."""
    create(api)
    r = api.get("/connections/acme")
    assert r.status_code == 400 and code(r) == "invalid_query_params"


def test_get_with_an_unknown_integration_is_400_unknown_provider_config(api):
    """real server v0.71.4: GET with an unknown provider_config_key: 400 unknown_provider_config."""
    r = api.get("/connections/acme", params={"provider_config_key": "nope"})
    assert r.status_code == 400 and code(r) == "unknown_provider_config"


def test_metadata_of_a_missing_connection_is_404_unknown_connection(api):
    """real server v0.71.4: POST/PATCH /connections/metadata of an unknown connection: 404 unknown_connection."""
    for method in ("POST", "PATCH"):
        r = api.request(method, "/connections/metadata", json={
            "connection_id": "ghost", "provider_config_key": PCK, "metadata": {"a": 1}})
        assert r.status_code == 404 and code(r) == "unknown_connection"


def test_create_with_an_unknown_integration_is_404_not_found(api):
    """real server v0.71.4: a create naming an unknown integration: 404 not_found."""
    r = create(api, pck="nope")
    assert r.status_code == 404 and code(r) == "not_found"


def test_credential_of_the_wrong_type_is_400_invalid_body(api):
    """real server v0.71.4: a credential whose type is not the integration's auth mode: 400 invalid_body."""
    r = create(api, credentials={"type": "API_KEY", "apiKey": "k"})  # github-prod is OAUTH2
    assert r.status_code == 400 and code(r) == "invalid_body"
    assert create(api, "ok", pck="posthog-prod", credentials={"type": "API_KEY", "apiKey": "k"}).status_code == 201
    assert create(api, "no", pck="posthog-prod", credentials=OAUTH).status_code == 400


def test_oauth2_without_access_token_is_400_invalid_body(api):
    """real server v0.71.4: OAUTH2 credentials without access_token: 400 invalid_body."""
    r = create(api, credentials={"type": "OAUTH2", "refresh_token": "rt"})
    assert r.status_code == 400 and code(r) == "invalid_body"


def test_non_string_tag_value_is_400_invalid_body(api):
    """real server v0.71.4: a tag value that is not a string: 400 invalid_body."""
    r = create(api, tags={"team": 7})
    assert r.status_code == 400 and code(r) == "invalid_body"


def test_tag_keys_come_back_lower_cased(api):
    """real server v0.71.4: tag keys are lower-cased (values are kept)."""
    assert create(api, tags={"Team": "Data", "ENV": "prod"}).json()["tags"] == {"team": "Data", "env": "prod"}
    api.patch("/connections/acme", params={"provider_config_key": PCK}, json={"tags": {"Owner": "Ops"}})
    assert api.get("/connections/acme", params={"provider_config_key": PCK}).json()["tags"] == {"owner": "Ops"}


def test_list_limit_goes_up_to_2000(api):
    """real server v0.71.4: list limit 2000 is accepted, 2001 is 400 invalid_query_params."""
    assert api.get("/connections", params={"limit": 2000}).status_code == 200
    r = api.get("/connections", params={"limit": 2001})
    assert r.status_code == 400 and code(r) == "invalid_query_params"


def test_lists_come_newest_first(api):
    """real server v0.71.4: GET /connections lists the newest connection first."""
    for cid in ("first", "second", "third"):
        create(api, cid)
    assert [c["connection_id"] for c in api.get("/connections").json()["connections"]] == ["third", "second", "first"]


def test_webhook_url_override_is_null_when_unset(api):
    """real server v0.71.4: connection bodies carry webhook_url_override, null when unset."""
    assert create(api).json()["webhook_url_override"] is None
    assert api.get("/connections/acme", params={"provider_config_key": PCK}).json()["webhook_url_override"] is None
    assert api.get("/connections").json()["connections"][0]["webhook_url_override"] is None


def test_errors_have_code_and_message(api):
    """real server v0.71.4 and specs/nango-openapi.yaml StdError: {"error": {"code": ..., "message": ...}}."""
    body = api.get("/connections/ghost", params={"provider_config_key": "nope"}).json()
    assert set(body) == {"error"} and body["error"]["code"] == "unknown_provider_config"
    assert isinstance(body["error"]["message"], str)


# -- syncs ---------------------------------------------------------------------------------------
def test_never_run_sync_reports_success_without_finished_at(api):
    """real server v0.71.4: a sync that has never run reports status SUCCESS and no finishedAt."""
    create(api)
    syncs = status(api).json()["syncs"]
    assert {s["name"]: s["status"] for s in syncs} == {"issues": "SUCCESS", "pull-requests": "SUCCESS"}
    assert all("finishedAt" not in s for s in syncs)


def test_trigger_without_syncs_is_200_and_status_stays_empty(api):
    """real server v0.71.4: POST /sync/trigger on a connection without syncs: 200 {"success": true};
    /sync/status then returns {"syncs": []}."""
    create(api, "bare", pck="zoom-prod")  # an integration with no sync scripts deployed
    r = api.post("/sync/trigger", json={"provider_config_key": "zoom-prod", "connection_id": "bare", "syncs": []})
    assert r.status_code == 200 and r.json() == {"success": True}
    assert status(api, "bare", "zoom-prod").json() == {"syncs": []}


def test_status_for_an_unknown_integration_is_200_empty_list(api):
    """real server v0.71.4: /sync/status for an unknown integration: 200 []."""
    r = api.get("/sync/status", params={"provider_config_key": "nope", "syncs": "*"})
    assert r.status_code == 200 and r.json() == []


def test_status_for_an_unknown_or_deleted_connection_is_400_invalid_body(api):
    """real server v0.71.4, NangoHQ/nango getSyncStatus.ts: unknown or deleted connection: 400 invalid_body."""
    assert code(status(api, "ghost")) == "invalid_body"
    create(api)
    api.delete("/connections/acme", params={"provider_config_key": PCK})
    r = status(api)
    assert r.status_code == 400 and code(r) == "invalid_body"


def test_trigger_errors(api):
    """real server v0.71.4: /sync/trigger for an unknown connection 404 unknown_connection, for an
    unknown sync 400 no_syncs_found."""
    r = api.post("/sync/trigger", json={"provider_config_key": PCK, "connection_id": "ghost", "syncs": []})
    assert r.status_code == 404 and code(r) == "unknown_connection"
    create(api)
    r = api.post("/sync/trigger", json={"provider_config_key": PCK, "connection_id": "acme", "syncs": ["nope"]})
    assert r.status_code == 400 and code(r) == "no_syncs_found"


def test_frequency_put_answers_without_every(api):
    """real server v0.71.4, NangoHQ/nango putSyncConnectionFrequency.ts (``getInterval(...).interval``):
    the PUT answers "2 hours" for "every 2 hours"; a reset (null) answers the sync's own ``runs``."""
    create(api)
    assert set_frequency(api, "every 2 hours").json() == {"frequency": "2 hours"}
    assert set_frequency(api, None, "pull-requests").json() == {"frequency": "every 6 hours"}


def test_frequency_put_errors(api):
    """real server v0.71.4: unknown connection 400 unknown_connection, unknown sync 400 unknown_sync,
    below 30 s or unparsable 400 invalid_body."""
    r = set_frequency(api, "every hour", cid="ghost")
    assert r.status_code == 400 and code(r) == "unknown_connection"
    create(api)
    assert code(set_frequency(api, "every hour", sync="nope")) == "unknown_sync"
    for bad in ("every 10 seconds", "sometimes"):
        r = set_frequency(api, bad)
        assert r.status_code == 400 and code(r) == "invalid_body"


# -- auth and rate limit -------------------------------------------------------------------------
def test_auth_errors():
    """real server v0.71.4: no Authorization 401 missing_auth_header; a key that is not a UUID or not
    `Bearer` 401 invalid_secret_key_format; a well-formed unknown key 401 unknown_account."""
    api = client()
    cases = [({}, "missing_auth_header"), ({"Authorization": "Bearer not-a-uuid"}, "invalid_secret_key_format"),
             ({"Authorization": f"Basic {uuid.uuid4()}"}, "invalid_secret_key_format"),
             ({"Authorization": f"Bearer {uuid.uuid4()}"}, "unknown_account")]
    for headers, expected in cases:
        r = api.get("/connections", headers={"Authorization": ""} | headers)
        assert r.status_code == 401 and code(r) == expected, (headers, r.json())


def test_rate_limit_429_with_retry_after():
    """real server v0.71.4 (200 requests a minute per account) and NangoHQ/nango
    ratelimit.middleware.ts: beyond it 429 {"error": {"code": "too_many_request"}} with Retry-After
    (whole seconds, floored) and X-RateLimit-* headers; the next window admits requests again."""
    assert EmulatorConfig().rate_limit_window == 60.0
    api = client(rate_limit=3, rate_limit_window=0.5)
    answers = [api.get("/connections") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit"] == "3" and answers[2].headers["x-ratelimit-remaining"] == "0"
    refused = answers[3]
    assert code(refused) == "too_many_request" and refused.headers["retry-after"] == "0"  # under a second left
    time.sleep(0.55)
    assert api.get("/connections").status_code == 200
