"""Connectors API adapter against the Connectors API emulator, over real HTTP on loopback."""
from __future__ import annotations

import time

import pytest

from conftest import EMU_HTTP
from reconciler.errors import NotFound, OutcomeUnknown, ProviderError
from reconciler.http import RetryPolicy
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class

KEY = "capi-key-9876"
COL = "col_abc123"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def capi(emulator):
    def start(**config):
        config.setdefault("targets", [COL])
        emu = emulator("connectors-api", api_key=KEY, **config)
        provider = provider_class("connectors-api")(
            ProviderConfig(name="capi", type="connectors-api", url=emu.url, api_key=Secret(KEY)))
        provider.http.retry = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05)
        return emu, provider

    return start


def s3(name: str = "Document Storage", prefix: str = "/documents/", secret: str = "s3-secret-one",
       collection: str = COL) -> Connector:
    return Connector(name=name, provider="capi", source="s3", target=collection,
                     scope={"bucket": "my-documents", "region": "us-east-1", "prefix": prefix},
                     credentials={"accessKeyId": Secret("AKIAEXAMPLE1"), "secretAccessKey": Secret(secret)})


def state(emu) -> dict:
    return EMU_HTTP.get(emu.url + "/_emulator/state").json()


def test_create_projects_equal_to_desired(capi):
    emu, p = capi()
    c = s3()
    live = p.create(c, idempotency_key="k")
    assert live.complete and live.fields == p.desired_fields(c)
    assert live.key == p.identity(c) == "Document Storage"
    [listed] = list(p.list([COL]))
    assert not listed.complete and "scope" not in listed.fields  # the list has no config
    assert listed.version == live.version
    assert p.read(listed).fields == p.desired_fields(c)


def test_server_defaults_are_normalised(capi):
    emu, p = capi()
    c = Connector(name="warehouse", provider="capi", source="postgresql", target=COL,
                  scope={"host": "db.internal", "port": 5432, "database": "analytics"},
                  credentials={"username": Secret("reader"), "password": Secret("pg-password-1")})
    live = p.create(c, idempotency_key="k")
    assert live.fields["scope"]["schema"] == "public"
    assert live.fields == p.desired_fields(c)


def test_scope_change_updates_in_place_and_moves_version(capi):
    emu, p = capi()
    first = p.create(s3(), idempotency_key="k")
    changed = s3(prefix="/new-prefix/")
    after = p.update(changed, first, frozenset({"scope"}))
    assert after.id == first.id and after.fields == p.desired_fields(changed)
    assert after.version != first.version
    [listed] = list(p.list([COL]))
    assert listed.version == after.version and p.read(listed).fields["scope"]["prefix"] == "/new-prefix/"


def test_credential_change_rotates_and_keeps_id(capi):
    emu, p = capi()
    first = p.create(s3(secret="s3-secret-one"), idempotency_key="k")
    before = state(emu)["connectors"][first.id]["credential_fingerprint"]
    after = p.update(s3(secret="s3-secret-two"), first, frozenset({"credentials"}))
    assert after.id == first.id
    assert state(emu)["connectors"][first.id]["credential_fingerprint"] != before


def test_type_or_collection_change_is_refused(capi):
    emu, p = capi(targets=[COL, "col_other"])
    live = p.create(s3(), idempotency_key="k")
    # the adapter's PUT sends name and config only (the seed's example, lines 78-83); the planner
    # replaces on a type or collection change, and the emulator refuses such a PUT
    r = EMU_HTTP.put(f"{emu.url}/v1/connectors/{live.id}", headers=AUTH, json={"collection": "col_other"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "immutable_field"


def test_delete_then_404(capi):
    emu, p = capi()
    live = p.create(s3(), idempotency_key="k")
    p.delete(live)
    assert list(p.list([COL])) == []
    p.delete(live)  # already gone
    with pytest.raises(NotFound):
        p.read(live)
    r = EMU_HTTP.get(f"{emu.url}/v1/connectors/{live.id}", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_unknown_collection_is_404(capi):
    emu, p = capi()
    # the message names no submitted value (issue 18: errors do not echo input)
    with pytest.raises(NotFound, match="Collection not found"):
        p.create(s3(collection="col_missing"), idempotency_key="k")


def test_bad_key_is_401(capi):
    emu, _ = capi()
    wrong = provider_class("connectors-api")(
        ProviderConfig(name="capi", type="connectors-api", url=emu.url, api_key=Secret("wrong-key-1")))
    with pytest.raises(ProviderError) as err:
        list(wrong.list([]))
    assert err.value.status == 401 and "unauthorized" in str(err.value)
    r = EMU_HTTP.get(emu.url + "/v1/connectors")
    assert r.status_code == 401 and r.json() == {"error": {"code": "unauthorized", "message": "Missing or invalid API key"}}


@pytest.mark.parametrize("type_name, config, field", [
    ("s3", {"bucket": "b"}, "config.region"),
    ("s3", {"bucket": "b", "region": "r", "color": "blue"}, "config.color"),
    ("s3", {"bucket": "b", "region": "r", "endpoint": "ftp://x"}, "config.endpoint"),
    ("postgresql", {"host": "h", "database": "d", "port": "5432"}, "config.port"),
    ("postgresql", {"host": "h", "port": 5432}, "config.database"),
    ("github", {"repos": []}, "config.repos"),
    ("confluence", {"spaceKeys": ["ENG"]}, "config.instanceUrl"),
    ("slack", {"channels": ["general"], "dateRange": 30}, "config.dateRange"),
    ("salesforce", {"soqlFilter": "x"}, "config.objects"),
    ("notion", {"pageId": "p"}, "config.pageId"),
    ("ftp", {}, "type"),
])
def test_validation_422_with_details(capi, type_name, config, field):
    emu, _ = capi()
    body = {"name": "n", "type": type_name, "collection": COL, "config": config, "credentials": {"token": "tok-val-1"}}
    r = EMU_HTTP.post(emu.url + "/v1/connectors", json=body, headers=AUTH)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]]
    assert "tok-val-1" not in r.text


def test_validation_error_reaches_the_user_without_retry(capi):
    emu, p = capi()
    c = Connector(name="gh", provider="capi", source="github", target=COL, scope={"branch": "main"},
                  credentials={"token": Secret("ghp_validation")})
    with pytest.raises(ProviderError) as err:
        p.create(c, idempotency_key="k")
    assert err.value.status == 422 and "config.repos: is required" in str(err.value)
    assert "ghp_validation" not in str(err.value)
    assert p.http.counter.counts["create"] == 1


def test_missing_credentials_and_bad_json(capi):
    emu, _ = capi()
    r = EMU_HTTP.post(emu.url + "/v1/connectors", headers=AUTH,
                   json={"name": "n", "type": "s3", "collection": COL, "config": {"bucket": "b", "region": "r"}})
    assert r.status_code == 422 and r.json()["error"]["details"] == [
        {"field": "credentials", "message": "must be an object of non-empty strings"}]
    oauth = EMU_HTTP.post(emu.url + "/v1/connectors", headers=AUTH, json={"name": "d", "type": "google_drive", "collection": COL})
    assert oauth.status_code == 201
    bad = EMU_HTTP.post(emu.url + "/v1/connectors", headers={**AUTH, "content-type": "application/json"}, content=b"{nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_list_pages_with_cursor(capi):
    emu, p = capi(targets=[COL, "col_other"], page_limit_max=3)
    names = [f"c{i:02d}" for i in range(8)]
    for i, name in enumerate(names):
        p.create(s3(name=name, collection=COL if i % 2 == 0 else "col_other"), idempotency_key="k")
    p.page_limit = 3
    p.http.counter.counts.clear()
    every = [x.name for x in p.list([])]
    assert every == names and p.http.counter.counts["list"] == 3
    assert [x.name for x in p.list([COL])] == names[0::2]
    # a page deleted from under the cursor does not lose or repeat the rest
    first_page = EMU_HTTP.get(emu.url + "/v1/connectors", params={"limit": 3}, headers=AUTH).json()
    EMU_HTTP.delete(f"{emu.url}/v1/connectors/{first_page['data'][-1]['id']}", headers=AUTH)
    rest = EMU_HTTP.get(emu.url + "/v1/connectors", headers=AUTH,
                     params={"limit": 3, "cursor": first_page["pagination"]["nextCursor"]}).json()
    assert [x["name"] for x in rest["data"]] == names[3:6]
    r = EMU_HTTP.get(emu.url + "/v1/connectors", params={"limit": 4}, headers=AUTH)
    assert r.status_code == 422  # above this emulator's page cap
    r = EMU_HTTP.get(emu.url + "/v1/connectors", params={"cursor": "garbage!"}, headers=AUTH)
    assert r.status_code == 400


def test_faults_are_retried(capi):
    emu, p = capi(fail_rate=0.3, throttle_rate=0.3, seed=11)
    # create is not retried on 5xx (its outcome is unknown); exercise it under throttling only
    emu.config.fail_rate = 0.0
    live = p.create(s3(), idempotency_key="k")
    emu.config.fail_rate = 0.3
    for _ in range(4):
        [listed] = list(p.list([COL]))
        assert p.read(listed).fields == p.desired_fields(s3())
    after = p.update(s3(prefix="/p2/"), live, frozenset({"scope"}))
    assert after.fields["scope"]["prefix"] == "/p2/"
    p.delete(live)
    assert list(p.list([COL])) == []
    faults = emu.stats["faults"]
    assert faults.get("429", 0) > 0 and sum(faults.get(s, 0) for s in ("500", "502", "503")) > 0


def test_dropped_create_is_outcome_unknown_and_lookup_finds_it(capi):
    emu, p = capi(drop_rate=1.0)
    c = s3()
    with pytest.raises(OutcomeUnknown):
        p.create(c, idempotency_key="k")
    assert p.http.counter.counts["create"] == 1  # never retried blindly
    emu.config.drop_rate = 0.0
    found = p.lookup(c)
    assert found is not None and found.complete and found.fields == p.desired_fields(c)
    assert len(state(emu)["connectors"]) == 1
    assert p.lookup(s3(name="never made")) is None


def test_sync_progress_and_status(capi):
    emu, p = capi(sync_duration=0.4)
    live = p.create(s3(), idempotency_key="k")
    job = p.trigger_sync(live)
    assert job.status == "queued" and job.id.startswith("job_")
    assert p.status(live).status == "syncing"
    seen = []
    deadline = time.time() + 5
    while not job.done and time.time() < deadline:
        job = p.get_sync(live, job.id)
        seen.append(job)
        time.sleep(0.05)
    assert job.status == "completed" and job.finished_at
    assert job.progress == {"collected": 120, "parsed": 120, "indexed": 120}
    running = [j for j in seen if j.status == "running"]
    assert running and all(j.progress["collected"] >= j.progress["parsed"] >= j.progress["indexed"] for j in running)
    assert p.status(live).status == "active"
    [listed] = list(p.list([COL]))
    assert listed.extra["last_sync"] == job.finished_at
    assert listed.version == live.version  # a sync is not a change to the connector
    with pytest.raises(NotFound):
        p.get_sync(live, "job_missing")


def test_sync_failure(capi):
    emu, p = capi(sync_duration=0.1, sync_fail=True)
    live = p.create(s3(), idempotency_key="k")
    job = p.trigger_sync(live)
    time.sleep(0.15)
    job = p.get_sync(live, job.id)
    assert job.status == "failed" and job.error
    assert p.status(live).status == "error"


def test_credentials_never_returned_or_stored(capi, tmp_path):
    emu, p = capi(data_dir=str(tmp_path))
    secrets = ["AKIAEXAMPLE1", "s3-secret-one"]
    live = p.create(s3(), idempotency_key="k")
    texts = [
        EMU_HTTP.get(emu.url + "/v1/connectors", headers=AUTH).text,
        EMU_HTTP.get(f"{emu.url}/v1/connectors/{live.id}", headers=AUTH).text,
        EMU_HTTP.put(f"{emu.url}/v1/connectors/{live.id}", headers=AUTH,
                  json={"credentials": {"accessKeyId": "AKIAEXAMPLE1", "secretAccessKey": "s3-secret-one"}}).text,
        EMU_HTTP.get(emu.url + "/_emulator/state").text,
        "".join(f.read_text() for f in tmp_path.iterdir()),
        repr(p.read(live)),
    ]
    for text in texts:
        for secret in secrets:
            assert secret not in text
