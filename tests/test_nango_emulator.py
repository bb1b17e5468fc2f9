"""The Nango emulator over real HTTP, every response checked against the real spec's schemas."""
from __future__ import annotations

import time
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import EMU_HTTP

SPEC_PATH = Path("/work/shared/specs/nango-openapi.yaml")
if not SPEC_PATH.exists():
    SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "specs" / "nango-openapi.yaml"
SPEC = yaml.load(SPEC_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 4x faster, same document
REGISTRY = Registry().with_resource("urn:nango", Resource.from_contents(SPEC, default_specification=DRAFT202012))
KEY = "test-key"


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def check(response: httpx.Response, path: str, method: str) -> dict:
    """Validate a response body against the spec's schema for (path, method, status)."""
    status = str(response.status_code)
    op = SPEC["paths"][path][method]
    if status == "201" and status not in op["responses"]:
        status = "200"  # the spec says 200 where the real server answers 201 (POST /connections)
    spec_response = op["responses"][status]
    if "$ref" in spec_response:
        ref = "urn:nango#" + spec_response["$ref"][1:] + "/content/application~1json/schema"
    else:
        ref = "urn:nango#/" + _pointer("paths", path, method, "responses", status, "content", "application/json",
                                       "schema")
    body = response.json()
    jsonschema.Draft202012Validator({"$ref": ref}, registry=REGISTRY).validate(body)
    return body


@pytest.fixture
def nango(emulator):
    emu = emulator("nango", targets=["github-prod", "slack-main", "posthog-prod", "freshdesk-prod"],
                   sync_creation_delay=0.0)
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield emu, client


def upsert(client, cid, pck="github-prod", **extra):
    body = {"provider_config_key": pck, "connection_id": cid,
            "credentials": {"type": "OAUTH2", "access_token": f"key-{cid}"}, **extra}
    return client.post("/connections", json=body)


def test_upsert_get_list_conform_to_spec(nango):
    _, client = nango
    # API_KEY, not OAUTH2: the spec's OAuth2CredentialsWithRaw (allOf of two closed objects) admits no body
    created = check(client.post("/connections", json={
        "provider_config_key": "posthog-prod", "connection_id": "acme", "metadata": {"repo": "a/b"},
        "tags": {"Team": "data"}, "credentials": {"type": "API_KEY", "apiKey": "key-acme"}}), "/connections", "post")
    assert created["tags"] == {"team": "data"}  # keys normalised to lowercase
    basic = {"type": "BASIC", "username": "u", "password": "p"}
    check(client.post("/connections", json={"provider_config_key": "freshdesk-prod", "connection_id": "b",
                                             "credentials": basic}), "/connections", "post")
    key = {"type": "API_KEY", "apiKey": "key-c"}
    check(client.post("/connections", json={"provider_config_key": "posthog-prod", "connection_id": "c",
                                             "credentials": key}), "/connections", "post")
    got = check(client.get("/connections/c", params={"provider_config_key": "posthog-prod"}),
                "/connections/{connectionId}", "get")
    assert got["credentials"] == {"type": "API_KEY", "apiKey": "key-c"}  # the real API returns them
    listed = check(client.get("/connections"), "/connections", "get")
    assert [c["connection_id"] for c in listed["connections"]] == ["c", "b", "acme"]  # newest first
    assert "credentials" not in listed["connections"][-1]
    assert listed["connections"][-1]["metadata"] == {"repo": "a/b"}


def test_upsert_is_keyed_by_connection_and_integration(nango):
    _, client = nango
    first = upsert(client, "acme", metadata={"a": 1}).json()
    again = upsert(client, "acme").json()
    assert again["id"] == first["id"] and again["metadata"] == {"a": 1}
    other = upsert(client, "acme", pck="slack-main").json()
    assert other["id"] != first["id"]
    assert len(client.get("/connections").json()["connections"]) == 2


def test_oauth2_refresh_token_only_on_request(nango):
    _, client = nango
    creds = {"type": "OAUTH2", "access_token": "at-1", "refresh_token": "rt-1"}
    client.post("/connections", json={"provider_config_key": "github-prod", "connection_id": "o", "credentials": creds})
    plain = client.get("/connections/o", params={"provider_config_key": "github-prod"}).json()["credentials"]
    assert "refresh_token" not in plain and plain["raw"]["access_token"] == "at-1"
    full = client.get("/connections/o", params={"provider_config_key": "github-prod", "refresh_token": "true"})
    assert full.json()["credentials"]["refresh_token"] == "rt-1"


def test_validation_errors_have_nango_shape(nango):
    _, client = nango
    bad = client.post("/connections", json={"provider_config_key": "posthog-prod",
                                            "credentials": {"type": "API_KEY"}})
    assert bad.status_code == 400
    body = check(bad, "/connections", "post")
    assert body["error"]["code"] == "invalid_body"
    assert body["error"]["errors"][0]["path"] == ["credentials", "apiKey"]
    missing = client.post("/connections", json={"provider_config_key": "github-prod"})
    assert missing.status_code == 400 and missing.json()["error"]["errors"][0]["path"] == ["credentials"]
    tags = upsert(client, "t", tags={f"k{i}": "v" for i in range(11)})
    assert tags.status_code == 400 and "at most 10" in tags.json()["error"]["message"]
    unknown = upsert(client, "x", pck="nope")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"  # real server v0.71.4
    jsonschema.Draft202012Validator({"$ref": "urn:nango#/components/schemas/StdError"},
                                    registry=REGISTRY).validate(unknown.json())


def test_auth_401(nango):
    emu, _ = nango
    none = EMU_HTTP.get(f"{emu.url}/connections")
    assert none.status_code == 401 and none.json()["error"]["code"] == "missing_auth_header"
    wrong = EMU_HTTP.get(f"{emu.url}/integrations", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    check(wrong, "/integrations", "get")


def test_404_on_unknown_connection(nango):
    """Real server v0.71.4: GET of a missing connection is 404 not_found, DELETE 400 unknown_connection
    (the emulator said 404 unknown_connection to both)."""
    _, client = nango
    r = client.get("/connections/ghost", params={"provider_config_key": "github-prod"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    check(r, "/connections/{connectionId}", "get")
    r = client.delete("/connections/ghost", params={"provider_config_key": "github-prod"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_connection"
    check(r, "/connections/{connectionId}", "delete")


def test_pagination_and_filters(nango):
    _, client = nango
    for i in range(5):
        upsert(client, f"c{i}", tags={"env": "prod" if i % 2 else "dev"})
    pages = [client.get("/connections", params={"limit": 2, "page": p}).json()["connections"] for p in range(4)]
    assert [[c["connection_id"] for c in page] for page in pages] == [["c4", "c3"], ["c2", "c1"], ["c0"], []]
    prod = client.get("/connections", params={"tags[env]": "prod"}).json()["connections"]
    assert [c["connection_id"] for c in prod] == ["c3", "c1"]
    exact = client.get("/connections", params={"connectionId": "c2"}).json()["connections"]
    assert [c["connection_id"] for c in exact] == ["c2"]
    too_big = client.get("/connections", params={"limit": 5000})
    assert too_big.status_code == 400 and too_big.json()["error"]["code"] == "invalid_query_params"


def test_patch_tags_and_delete(nango):
    _, client = nango
    upsert(client, "acme", tags={"a": "1"})
    r = client.patch("/connections/acme", params={"provider_config_key": "github-prod"}, json={"tags": {"B": "2"}})
    assert check(r, "/connections/{connectionId}", "patch") == {"success": True}
    assert client.get("/connections").json()["connections"][0]["tags"] == {"b": "2"}
    r = client.delete("/connections/acme", params={"provider_config_key": "github-prod"})
    check(r, "/connections/{connectionId}", "delete")
    assert client.get("/connections").json()["connections"] == []


def test_metadata_set_replaces_and_patch_merges(nango):
    _, client = nango
    upsert(client, "a", metadata={"x": 1, "y": 2})
    upsert(client, "b", metadata={"z": 3})
    r = client.patch("/connections/metadata", json={"connection_id": ["a", "b"], "provider_config_key": "github-prod",
                                                     "metadata": {"y": 9}})
    check(r, "/connections/metadata", "patch")
    listed = {c["connection_id"]: c["metadata"] for c in client.get("/connections").json()["connections"]}
    assert listed == {"a": {"x": 1, "y": 9}, "b": {"z": 3, "y": 9}}
    r = client.post("/connections/metadata", json={"connection_id": "a", "provider_config_key": "github-prod",
                                                    "metadata": {"only": True}})
    assert r.status_code == 201
    check(r, "/connections/metadata", "post")
    got = client.get("/connections/a", params={"provider_config_key": "github-prod"}).json()
    assert got["metadata"] == {"only": True}
    # all or nothing: one unknown id aborts before any change
    r = client.post("/connections/metadata", json={"connection_id": ["a", "ghost"],
                                                    "provider_config_key": "github-prod", "metadata": {}})
    assert r.status_code == 404
    assert client.get("/connections/a", params={"provider_config_key": "github-prod"}).json()["metadata"] == {"only": True}


def test_frequency_trigger_status_and_integrations(nango):
    _, client = nango
    upsert(client, "acme")
    put = client.put("/sync/update-connection-frequency", json={
        "provider_config_key": "github-prod", "connection_id": "acme", "sync_name": "issues", "frequency": "every 2h"})
    assert check(put, "/sync/update-connection-frequency", "put") == {"frequency": "2h"}  # "every" dropped
    low = client.put("/sync/update-connection-frequency", json={
        "provider_config_key": "github-prod", "connection_id": "acme", "sync_name": "issues", "frequency": "10s"})
    assert low.status_code == 400 and "30 seconds" in low.json()["error"]["message"]
    reset = client.put("/sync/update-connection-frequency", json={
        "provider_config_key": "github-prod", "connection_id": "acme", "sync_name": "pull-requests",
        "frequency": None})
    assert reset.json() == {"frequency": "every 6 hours"}  # the integration default
    unknown = client.put("/sync/update-connection-frequency", json={
        "provider_config_key": "github-prod", "connection_id": "acme", "sync_name": "nope", "frequency": None})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_sync"
    trig = client.post("/sync/trigger", json={"provider_config_key": "github-prod", "connection_id": "acme",
                                              "syncs": ["issues"]})
    assert check(trig, "/sync/trigger", "post") == {"success": True}
    status = check(client.get("/sync/status", params={"provider_config_key": "github-prod", "syncs": "*",
                                                      "connection_id": "acme"}), "/sync/status", "get")
    by_name = {s["name"]: s for s in status["syncs"]}
    assert by_name["issues"]["status"] == "RUNNING" and by_name["issues"]["frequency"] == "every 2h"
    # never run (the emulator no longer auto-runs a new connection's syncs): SUCCESS, no finishedAt
    assert by_name["pull-requests"]["status"] == "SUCCESS" and "finishedAt" not in by_name["pull-requests"]
    time.sleep(0.35)
    done = client.get("/sync/status", params={"provider_config_key": "github-prod", "syncs": "issues"}).json()
    assert [s["status"] for s in done["syncs"]] == ["SUCCESS"]
    integrations = check(client.get("/integrations"), "/integrations", "get")
    assert sorted(i["unique_key"] for i in integrations["data"]) == ["freshdesk-prod", "github-prod", "posthog-prod",
                                                                      "slack-main"]
    functions = check(client.get("/integrations/slack-main/functions", params={"type": "sync"}),
                      "/integrations/{uniqueKey}/functions", "get")
    assert {f["name"]: f["runs"] for f in functions["data"]}["messages"] == "every 30 minutes"


def test_state_persists_in_data_dir(emulator, tmp_path):
    emu = emulator("nango", targets=["github-prod"], data_dir=str(tmp_path))
    headers = {"Authorization": f"Bearer {KEY}"}
    EMU_HTTP.post(f"{emu.url}/connections", headers=headers, json={
        "provider_config_key": "github-prod", "connection_id": "kept",
        "credentials": {"type": "OAUTH2", "access_token": "t"}})
    emu.stop()
    again = emulator("nango", targets=["github-prod"], data_dir=str(tmp_path))
    listed = EMU_HTTP.get(f"{again.url}/connections", headers=headers).json()["connections"]
    assert [c["connection_id"] for c in listed] == ["kept"]


def test_spec_check_is_not_vacuous():
    """The helper above really rejects bodies the spec forbids (so its passes mean something)."""
    bad = httpx.Response(200, json={"connections": [{"id": "not-an-int", "connection_id": "a"}]})
    with pytest.raises(jsonschema.ValidationError):
        check(bad, "/connections", "get")
    extra = httpx.Response(401, json={"error": {"code": "x"}, "detail": "not in StdError"})
    with pytest.raises(jsonschema.ValidationError):
        check(extra, "/integrations", "get")
