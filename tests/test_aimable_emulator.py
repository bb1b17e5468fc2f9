"""The Aimable emulator over real HTTP: auth, targets, validation, idempotency, paging, secrets."""
from __future__ import annotations

import json

import httpx
import pytest

from conftest import EMU_HTTP
from reconciler.emulators.aimable import browse_items, validate_create
from reconciler.emulators.base import decode_cursor, encode_cursor

AUTH = {"Authorization": "Bearer test-key"}
SECRET = "ya29.emulator-secret-token-0001"
REFRESH = "1//04-emulator-refresh-0002"


def base(emu, target: str = "sp1/col1") -> str:
    space, collection = target.split("/")
    return f"{emu.url}/v1/spaces/{space}/collections/{collection}/connectors"


def drive_body(folders=("1A2B3C4D",), token: str = SECRET) -> dict:
    return {"provider_slug": "google-drive", "credential": {"access_token": token, "refresh_token": REFRESH},
            "scope_config": {"folder_ids": list(folders)}}


def create(emu, key: str, body: dict, target: str = "sp1/col1") -> httpx.Response:
    return EMU_HTTP.post(base(emu, target), headers={**AUTH, "Idempotency-Key": key}, json=body)


@pytest.fixture
def emu(emulator):
    return emulator("aimable", targets=["sp1/col1", "sp1/col2"])


def test_create_answers_201_with_the_seed_shape_and_no_credential(emu):
    r = create(emu, "k-1", drive_body())
    assert r.status_code == 201
    data = r.json()["data"]
    assert set(data) == {"id", "collection_id", "provider_slug", "principal_id", "scope_config", "status",
                         "created_at", "updated_at"}
    assert data["collection_id"] == "col1" and data["provider_slug"] == "google-drive"
    assert data["scope_config"] == {"folder_ids": ["1A2B3C4D"]} and data["status"] == "active"
    got = EMU_HTTP.get(f"{base(emu)}/{data['id']}", headers=AUTH).json()["data"]
    assert got == data


def test_credentials_are_never_returned_nor_stored(emu):
    cid = create(emu, "k-1", drive_body()).json()["data"]["id"]
    EMU_HTTP.patch(f"{base(emu)}/{cid}", headers=AUTH, json={"credential": {"access_token": SECRET + "-rotated"}})
    seen = [EMU_HTTP.get(base(emu), headers=AUTH).text, EMU_HTTP.get(f"{base(emu)}/{cid}", headers=AUTH).text,
            EMU_HTTP.get(f"{emu.url}/_emulator/state").text]
    for text in seen:
        assert SECRET not in text and REFRESH not in text
        assert '"credential"' not in text


def test_api_key_header_and_bearer_both_authenticate_and_bad_keys_get_401(emu):
    assert EMU_HTTP.get(base(emu), headers={"X-API-Key": "test-key"}).status_code == 200
    assert EMU_HTTP.get(base(emu), headers=AUTH).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
        r = EMU_HTTP.get(base(emu), headers=headers)
        assert r.status_code == 401
        assert r.json() == {"detail": "Missing or invalid access token."}


def test_unknown_space_is_403_and_unknown_collection_in_a_known_space_is_404(emu):
    r = EMU_HTTP.get(base(emu, "other/col1"), headers=AUTH)
    assert r.status_code == 403 and "permission" in r.json()["detail"].lower()
    r = EMU_HTTP.get(base(emu, "sp1/nope"), headers=AUTH)
    assert r.status_code == 404 and r.json() == {"detail": "Collection not found"}


def test_limit_over_100_is_422_in_the_seed_format(emu):
    r = EMU_HTTP.get(base(emu), headers=AUTH, params={"limit": 101})
    assert r.status_code == 422
    assert r.json() == {"detail": [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100",
                                    "type": "less_than_equal"}]}
    assert EMU_HTTP.get(base(emu), headers=AUTH, params={"limit": 100}).status_code == 200
    assert EMU_HTTP.get(base(emu), headers=AUTH, params={"limit": 0}).json()["detail"][0]["type"] == "greater_than_equal"
    assert EMU_HTTP.get(base(emu), headers=AUTH, params={"limit": "x"}).json()["detail"][0]["type"] == "int_parsing"


def test_create_without_idempotency_key_is_422(emu):
    r = EMU_HTTP.post(base(emu), headers=AUTH, json=drive_body())
    assert r.status_code == 422
    assert r.json()["detail"] == [{"loc": ["header", "idempotency-key"], "msg": "Field required", "type": "missing"}]
    assert EMU_HTTP.get(base(emu), headers=AUTH).json()["data"] == []


def test_idempotency_same_key_same_body_replays_different_body_refused(emu):
    first = create(emu, "k-same", drive_body())
    again = create(emu, "k-same", drive_body())
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    other = create(emu, "k-same", drive_body(folders=["ZZZ"]))
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert len(EMU_HTTP.get(base(emu), headers=AUTH).json()["data"]) == 1


def test_same_key_on_another_collection_is_a_different_request(emu):
    assert create(emu, "k-x", drive_body()).status_code == 201
    assert create(emu, "k-x", drive_body(), target="sp1/col2").status_code == 422


def test_a_key_outlives_its_connector_and_replays_the_first_answer(emu):
    # issue 18: Stripe-style keys live ~24 h whatever happens to what they made; the emulator used
    # to free a key on delete and so hid a client that re-sent an old key (and recorded a dead id)
    first = create(emu, "k-del", drive_body())
    cid = first.json()["data"]["id"]
    assert EMU_HTTP.delete(f"{base(emu)}/{cid}", headers=AUTH).status_code == 204
    again = create(emu, "k-del", drive_body())
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the original answer: a connector that no longer exists
    assert EMU_HTTP.get(f"{base(emu)}/{cid}", headers=AUTH).status_code == 404
    assert create(emu, "k-del", drive_body(folders=["OTHER"])).status_code == 422


@pytest.mark.parametrize("body, loc, type_", [
    ({"provider_slug": "myspace", "credential": {"access_token": "abcd1234"}}, ["body", "provider_slug"], "enum"),
    ({"credential": {"access_token": "abcd1234"}}, ["body", "provider_slug"], "missing"),
    ({"provider_slug": "slack"}, ["body", "credential"], "missing"),
    ({"provider_slug": "slack", "credential": "tok"}, ["body", "credential"], "dict_type"),
    ({"provider_slug": "slack", "credential": {"access_token": 5}}, ["body", "credential", "access_token"],
     "value_error"),
    ({"provider_slug": "google-drive", "credential": {"access_token": "abcd1234"},
      "scope_config": {"folder_ids": "1A2B"}}, ["body", "scope_config", "folder_ids"], "value_error"),
    ({"provider_slug": "slack", "credential": {"access_token": "abcd1234"},
      "scope_config": {"channel_ids": ["C1", 2]}}, ["body", "scope_config", "channel_ids"], "value_error"),
    # issue 18: stricter than a lax server: unknown fields at the top, in the credential and in the
    # scope are refused, and empty lists too (the same rules as `reconcile validate`)
    ({"provider_slug": "slack", "credential": {"access_token": "abcd1234"}, "name": "x"}, ["body", "name"],
     "extra_forbidden"),
    ({"provider_slug": "slack", "credential": {"access_token": "abcd1234", "api_key": "abcd1234"}},
     ["body", "credential", "api_key"], "extra_forbidden"),
    ({"provider_slug": "slack", "credential": {"refresh_token": "abcd1234"}}, ["body", "credential", "access_token"],
     "missing"),
    ({"provider_slug": "slack", "credential": {"access_token": "abcd1234"}, "scope_config": {"channels": ["C"]}},
     ["body", "scope_config", "channels"], "extra_forbidden"),
    ({"provider_slug": "slack", "credential": {"access_token": "abcd1234"}, "scope_config": {"channel_ids": []}},
     ["body", "scope_config", "channel_ids"], "value_error"),
    ([1, 2], ["body"], "model_attributes_type"),
])
def test_invalid_bodies_are_422_naming_the_field(emu, body, loc, type_):
    r = create(emu, "k-bad", body)
    assert r.status_code == 422
    assert [(e["loc"], e["type"]) for e in r.json()["detail"]] == [(loc, type_)]
    assert "abcd1234" not in r.text


def test_invalid_json_is_422(emu):
    r = EMU_HTTP.post(base(emu), headers={**AUTH, "Idempotency-Key": "k", "Content-Type": "application/json"},
                   content=b"{not json")
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def test_patch_replaces_scope_and_refuses_other_fields(emu):
    data = create(emu, "k-p", drive_body()).json()["data"]
    url = f"{base(emu)}/{data['id']}"
    r = EMU_HTTP.patch(url, headers=AUTH, json={"scope_config": {"folder_ids": ["NEW"]}})
    assert r.status_code == 200 and r.json()["data"]["scope_config"] == {"folder_ids": ["NEW"]}
    assert r.json()["data"]["updated_at"] > data["updated_at"]
    r = EMU_HTTP.patch(url, headers=AUTH, json={"provider_slug": "slack"})
    assert r.status_code == 422 and r.json()["detail"][0] == {
        "loc": ["body", "provider_slug"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    assert EMU_HTTP.get(url, headers=AUTH).json()["data"]["provider_slug"] == "google-drive"


def test_unknown_connector_is_404_and_connectors_do_not_leak_across_collections(emu):
    cid = create(emu, "k-1", drive_body()).json()["data"]["id"]
    assert EMU_HTTP.get(f"{base(emu)}/nope", headers=AUTH).status_code == 404
    assert EMU_HTTP.get(f"{base(emu, 'sp1/col2')}/{cid}", headers=AUTH).status_code == 404
    assert EMU_HTTP.get(base(emu, "sp1/col2"), headers=AUTH).json()["data"] == []


def test_cursor_pagination_visits_every_connector_once_despite_deletes(emu):
    ids = [create(emu, f"k-{i}", drive_body(folders=[str(i)])).json()["data"]["id"] for i in range(7)]
    first = EMU_HTTP.get(base(emu), headers=AUTH, params={"limit": 3}).json()
    assert [c["id"] for c in first["data"]] == ids[:3] and first["next_cursor"]
    EMU_HTTP.delete(f"{base(emu)}/{ids[3]}", headers=AUTH)  # deleted between pages: nothing else shifts
    seen = [c["id"] for c in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        body = EMU_HTTP.get(base(emu), headers=AUTH, params={"limit": 3, "cursor": cursor}).json()
        seen += [c["id"] for c in body["data"]]
        cursor = body["next_cursor"]
    assert seen == ids[:3] + ids[4:]
    bad = EMU_HTTP.get(base(emu), headers=AUTH, params={"cursor": "!!"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_browse_lists_provider_shaped_resources(emu):
    drive = create(emu, "k-d", drive_body()).json()["data"]["id"]
    slack = create(emu, "k-s", {"provider_slug": "slack", "credential": {"access_token": "xoxb-1234"}}).json()["data"]
    top = EMU_HTTP.get(f"{base(emu)}/{drive}/browse", headers=AUTH).json()["data"]
    assert top and all(item["type"] == "folder" and item["has_children"] for item in top)
    sub = EMU_HTTP.get(f"{base(emu)}/{drive}/browse", headers=AUTH, params={"parent_id": top[0]["id"]}).json()["data"]
    assert sub and all(item["parent_id"] == top[0]["id"] for item in sub)
    channels = EMU_HTTP.get(f"{base(emu)}/{slack['id']}/browse", headers=AUTH).json()["data"]
    assert channels and all(c["type"] == "channel" and c["name"].startswith("#") for c in channels)


def test_state_persists_across_restarts(emulator, tmp_path):
    first = emulator("aimable", targets=["sp1/col1"], data_dir=str(tmp_path))
    cid = create(first, "k-keep", drive_body()).json()["data"]["id"]
    first.stop()
    second = emulator("aimable", targets=["sp1/col1"], data_dir=str(tmp_path))
    assert [c["id"] for c in EMU_HTTP.get(base(second), headers=AUTH).json()["data"]] == [cid]
    # the idempotency record survived too: the replay finds the same connector
    assert create(second, "k-keep", drive_body()).json()["data"]["id"] == cid
    stored = json.loads((tmp_path / "aimable.json").read_text())
    assert SECRET not in json.dumps(stored)


# -- pure helpers -------------------------------------------------------------------------------

def test_cursor_round_trip():
    assert decode_cursor(encode_cursor(42)) == 42


def test_validate_create_refuses_unknown_scope_keys_and_types_known_ones():
    # was: unknown keys kept as sent; the schema now refuses them, so the emulator must too (issue 18)
    ok = {"provider_slug": "github", "credential": {"access_token": "t0ken"}, "scope_config": {"repositories": ["a/b"]}}
    assert validate_create(ok) == []
    assert [e["loc"] for e in validate_create(dict(ok, scope_config={"something_new": 1}))] == [
        ["body", "scope_config", "something_new"]]
    bad = dict(ok, scope_config={"branch": ["main"]})
    assert validate_create(bad) == [{"loc": ["body", "scope_config", "branch"],
                                     "msg": "Value error, must be a non-empty string", "type": "value_error"}]


def test_browse_is_deterministic_and_flat_providers_have_no_children():
    assert browse_items("google-drive", None) == browse_items("google-drive", None)
    assert browse_items("slack", "C1") == []
    assert browse_items("google-drive", "a.1.2.3") == []
