"""Airstore adapter against the Airstore emulator, over real HTTP on loopback."""
from __future__ import annotations

import random

import httpx
import pytest

from reconciler.errors import NotFound, ProviderError
from reconciler.http import RetryPolicy
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class

ADMIN = "admin-token-4242"
WS = "ws_abc123"


@pytest.fixture
def airstore(emulator):
    def start(**config):
        config.setdefault("targets", [WS])
        emu = emulator("airstore", api_key=ADMIN, **config)
        provider = provider_class("airstore")(
            ProviderConfig(name="as", type="airstore", url=emu.url, api_key=Secret(ADMIN)))
        provider.http.retry = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05)
        return emu, provider

    return start


def gmail(token: str = "ya29.first-token", scope: str = "https://www.googleapis.com/auth/gmail.readonly",
          member: str | None = None, extra: dict | None = None) -> Connector:
    s: dict = {"scope": scope}
    if extra is not None:
        s["extra"] = extra
    return Connector(name="team-gmail", provider="as", source="gmail", target=WS, scope=s, member=member,
                     credentials={"access_token": Secret(token), "refresh_token": Secret("1//refresh-xyz")})


def state(emu) -> dict:
    return httpx.get(emu.url + "/_emulator/state").json()


def test_create_projects_equal_to_desired_and_list_agrees(airstore):
    emu, p = airstore()
    c = gmail(extra={"label": "INBOX"})
    live = p.create(c, idempotency_key="k")
    assert live.fields == p.desired_fields(c)
    assert live.key == p.identity(c) == f"{WS}//gmail"
    assert live.id.startswith("conn_")
    listed = list(p.list([WS]))
    assert [x.fields for x in listed] == [p.desired_fields(c)]
    # the server annotates extra with granted_scopes; the raw list shows it, the projection does not
    raw = httpx.get(f"{emu.url}/api/v1/workspaces/{WS}/connections", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert raw["success"] is True
    assert raw["data"][0]["extra"]["granted_scopes"] == ["https://www.googleapis.com/auth/gmail.readonly"]
    assert "granted_scopes" not in listed[0].fields["scope"]["extra"]


def test_scope_change_updates_in_place(airstore):
    emu, p = airstore()
    first = p.create(gmail(), idempotency_key="k")
    changed = gmail(scope="https://www.googleapis.com/auth/gmail.modify", extra={"a": "b"})
    after = p.update(changed, first, frozenset({"scope"}))
    assert after.id == first.id
    assert after.fields == p.desired_fields(changed)
    assert [x.fields["scope"] for x in p.list([WS])] == [{"scope": "https://www.googleapis.com/auth/gmail.modify",
                                                          "extra": {"a": "b"}}]
    # dropping scope and extra from the manifest clears them on the server
    bare = Connector(name="team-gmail", provider="as", source="gmail", target=WS,
                     credentials={"access_token": Secret("ya29.first-token")})
    cleared = p.update(bare, after, frozenset({"scope"}))
    assert "scope" not in cleared.fields and cleared.fields == p.desired_fields(bare)


def test_credential_change_keeps_id_and_rotates(airstore):
    emu, p = airstore()
    first = p.create(gmail(token="ya29.first-token"), idempotency_key="k")
    before = state(emu)["connections"][first.id]
    after = p.update(gmail(token="ya29.second-token"), first, frozenset({"credentials"}))
    now = state(emu)["connections"]
    assert after.id == first.id and list(now) == [first.id]
    assert now[first.id]["credential_fingerprint"] != before["credential_fingerprint"]
    assert after.version is not None and after.version >= first.version


def test_member_connection_identity_and_member_tokens(airstore):
    emu, p = airstore()
    mine = gmail(member="mem_alice")
    live = p.create(mine, idempotency_key="k")
    assert live.key == f"{WS}/mem_alice/gmail" == p.identity(mine)
    assert live.fields["member"] == "mem_alice" and live.fields == p.desired_fields(mine)
    # shared and personal connections of the same type are distinct upsert keys
    shared = p.create(gmail(), idempotency_key="k2")
    assert shared.id != live.id and len(list(p.list([WS]))) == 2

    token = httpx.post(emu.url + "/_emulator/members", json={"workspace_id": WS, "member_id": "mem_bob"}).json()["data"]["token"]
    as_bob = provider_class("airstore")(ProviderConfig(name="bob", type="airstore", url=emu.url, api_key=Secret(token)))
    with pytest.raises(ProviderError) as shared_refused:
        as_bob.create(gmail(), idempotency_key="k")
    assert shared_refused.value.status == 403 and "admin access required" in str(shared_refused.value)
    with pytest.raises(ProviderError) as other_refused:
        as_bob.create(gmail(member="mem_alice"), idempotency_key="k")
    assert other_refused.value.status == 403
    with pytest.raises(ProviderError) as delete_refused:
        as_bob.delete(live)
    assert delete_refused.value.status == 403
    own = as_bob.create(gmail(member="mem_bob"), idempotency_key="k")
    assert own.key == f"{WS}/mem_bob/gmail"


def test_delete_and_delete_again(airstore):
    emu, p = airstore()
    live = p.create(gmail(), idempotency_key="k")
    p.delete(live)
    assert list(p.list([WS])) == []
    p.delete(live)  # already gone: a 404 counts as success
    assert state(emu)["connections"] == {}


def test_unknown_workspace_is_404(airstore):
    emu, p = airstore()
    assert list(p.list(["ws_missing"])) == []
    c = Connector(name="x", provider="as", source="github", target="ws_missing",
                  credentials={"access_token": Secret("ghp_abcdef")})
    with pytest.raises(NotFound) as err:
        p.create(c, idempotency_key="k")
    assert "workspace not found" in str(err.value)
    raw = httpx.get(emu.url + "/api/v1/workspaces/ws_missing/connections", headers={"Authorization": f"Bearer {ADMIN}"})
    assert raw.status_code == 404 and raw.json() == {"success": False, "error": "workspace not found"}


def test_bad_token_is_401(airstore):
    emu, _ = airstore()
    wrong = provider_class("airstore")(ProviderConfig(name="as", type="airstore", url=emu.url, api_key=Secret("nope-nope")))
    with pytest.raises(ProviderError) as err:
        list(wrong.list([WS]))
    assert err.value.status == 401 and "invalid token" in str(err.value)
    raw = httpx.get(emu.url + f"/api/v1/workspaces/{WS}/connections")
    assert raw.status_code == 401 and raw.json() == {"success": False, "error": "authorization required"}


@pytest.mark.parametrize("body, message", [
    ({"access_token": "ya29.zzzz"}, "integration_type required"),
    ({"integration_type": "gmail"}, "access_token or api_key required"),
    ({"integration_type": "dropbox", "api_key": "k-12345"}, "unsupported integration_type"),
    ({"integration_type": "gmail", "access_token": "ya29.zzzz", "extra": {"n": 1}}, "invalid request"),
])
def test_validation_error_format(airstore, body, message):
    emu, _ = airstore()
    r = httpx.post(f"{emu.url}/api/v1/workspaces/{WS}/connections", json=body, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 400
    assert r.json()["success"] is False and message in r.json()["error"]
    assert "ya29.zzzz" not in r.text and "k-12345" not in r.text


def test_validation_error_surfaces_without_retry(airstore):
    emu, p = airstore()
    c = Connector(name="x", provider="as", source="posthog", target=WS, credentials={"refresh_token": Secret("only-refresh")})
    with pytest.raises(ProviderError) as err:
        p.create(c, idempotency_key="k")
    assert err.value.status == 400 and "access_token or api_key required" in str(err.value)
    assert p.http.counter.counts["create"] == 1


def test_unknown_credential_field_fails_before_any_call(airstore):
    emu, p = airstore()
    c = Connector(name="x", provider="as", source="github", target=WS, credentials={"password": Secret("hunter2-pw")})
    with pytest.raises(ProviderError, match="unknown credential field"):
        p.create(c, idempotency_key="k")
    assert p.http.counter.total == 0


def test_faults_are_retried(airstore):
    emu, p = airstore(fail_rate=0.3, throttle_rate=0.3, seed=7)
    for source in ("gmail", "github", "notion", "linear", "slack"):
        p.create(Connector(name=source, provider="as", source=source, target=WS,
                           credentials={"access_token": Secret(f"tok-{source}")}), idempotency_key="k")
    assert sorted(x.source for x in p.list([WS])) == ["github", "gmail", "linear", "notion", "slack"]
    faults = emu.stats["faults"]
    assert faults.get("429", 0) > 0 and sum(faults.get(s, 0) for s in ("500", "502", "503")) > 0


def test_dropped_upsert_is_retried_without_duplicate(airstore):
    seed = 1
    rng = random.Random(seed)
    assert rng.random() < 0.5 <= rng.random()  # first POST dropped after commit, the retry answered
    emu, p = airstore(drop_rate=0.5, seed=seed)
    live = p.create(gmail(), idempotency_key="k")
    assert emu.stats["faults"]["drop"] == 1
    assert p.http.counter.counts["create"] == 2
    assert list(state(emu)["connections"]) == [live.id]


def test_credentials_never_returned_or_stored(airstore):
    emu, p = airstore()
    secrets = ["ya29.first-token", "1//refresh-xyz", "phx_posthog_key"]
    p.create(gmail(), idempotency_key="k")
    p.create(Connector(name="ph", provider="as", source="posthog", target=WS,
                       credentials={"api_key": Secret("phx_posthog_key")}), idempotency_key="k")
    headers = {"Authorization": f"Bearer {ADMIN}"}
    texts = [
        httpx.get(f"{emu.url}/api/v1/workspaces/{WS}/connections", headers=headers).text,
        httpx.post(f"{emu.url}/api/v1/workspaces/{WS}/connections", headers=headers,
                   json={"integration_type": "gmail", "access_token": "ya29.first-token"}).text,
        httpx.get(emu.url + "/_emulator/state").text,
        repr(list(p.list([WS]))),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_data_dir_persists_across_restart(emulator, tmp_path):
    first = emulator("airstore", api_key=ADMIN, targets=[WS], data_dir=str(tmp_path))
    p = provider_class("airstore")(ProviderConfig(name="as", type="airstore", url=first.url, api_key=Secret(ADMIN)))
    live = p.create(gmail(), idempotency_key="k")
    first.stop()
    second = emulator("airstore", api_key=ADMIN, data_dir=str(tmp_path))
    q = provider_class("airstore")(ProviderConfig(name="as", type="airstore", url=second.url, api_key=Secret(ADMIN)))
    assert [x.id for x in q.list([WS])] == [live.id]
    assert "ya29.first-token" not in "".join(f.read_text() for f in tmp_path.iterdir())
