"""The Aimable adapter against the Aimable emulator over loopback HTTP, plus its pure helpers."""
from __future__ import annotations

import time

import pytest

from conftest import EMU_HTTP
from reconciler.errors import ProviderError
from reconciler.http import RetryPolicy
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class
from reconciler.providers.aimable import AimableProvider, format_error, split_target

TOKEN = "ya29.provider-test-access-token"
REFRESH = "1//04-provider-test-refresh"
FAST = RetryPolicy(attempts=6, base_delay=0.005, max_delay=0.02)


def make(emu, api_key: str = "test-key") -> AimableProvider:
    provider = AimableProvider(ProviderConfig(name="aim", type="aimable", url=emu.url, api_key=Secret(api_key)))
    provider.http.retry = FAST  # keep fault tests fast; the policy itself is http.py's concern
    return provider


def drive(name: str = "team-drive", folders=("1A2B3C4D", "5E6F7G8H"), token: str = TOKEN,
          target: str = "sp1/col1", source: str = "google-drive") -> Connector:
    return Connector(name=name, provider="aim", source=source, target=target,
                     scope={"folder_ids": list(folders)},
                     credentials={"access_token": Secret(token), "refresh_token": Secret(REFRESH)})


def state(emu) -> dict:
    return EMU_HTTP.get(f"{emu.url}/_emulator/state").json()


@pytest.fixture
def emu(emulator):
    return emulator("aimable", targets=["sp1/col1", "sp1/col2"])


@pytest.fixture
def provider(emu):
    p = make(emu)
    yield p
    p.close()


def test_registry_finds_the_adapter():
    assert provider_class("aimable") is AimableProvider


def test_create_then_list_projects_equal_to_desired(provider):
    connector = drive()
    live = provider.create(connector, idempotency_key="idem-1")
    assert live.key == "" and live.name is None and live.id and live.target == "sp1/col1"
    assert provider.identity(connector) == ""
    listed = list(provider.list(["sp1/col1", "sp1/col2"]))
    assert [item.id for item in listed] == [live.id]
    assert listed[0].fields == provider.desired_fields(connector) == {
        "source": "google-drive", "target": "sp1/col1", "scope": {"folder_ids": ["1A2B3C4D", "5E6F7G8H"]}}
    assert provider.read(listed[0]).fields == listed[0].fields


def test_connector_without_scope_projects_the_platform_default(provider):
    connector = Connector(name="s", provider="aim", source="slack", target="sp1/col1",
                          credentials={"access_token": Secret("xoxb-test-token")})
    provider.create(connector, idempotency_key="idem-slack")
    (live,) = provider.list(["sp1/col1"])
    assert live.fields == provider.desired_fields(connector)


def test_same_idempotency_key_twice_makes_one_connector(provider, emu):
    first = provider.create(drive(), idempotency_key="idem-twice")
    second = provider.create(drive(), idempotency_key="idem-twice")
    assert first.id == second.id
    assert len(list(provider.list(["sp1/col1"]))) == 1
    assert emu.stats["requests"]["POST /v1/spaces/sp1/collections/col1/connectors"] == 2


def test_same_key_different_body_is_a_provider_error_naming_the_header(provider):
    provider.create(drive(), idempotency_key="idem-reused")
    with pytest.raises(ProviderError) as info:
        provider.create(drive(folders=["OTHER"]), idempotency_key="idem-reused")
    assert info.value.status == 422 and not info.value.retryable
    assert "header.idempotency-key" in str(info.value)
    assert len(list(provider.list(["sp1/col1"]))) == 1


def test_dropped_create_answers_are_retried_without_duplicates(emulator):
    emu = emulator("aimable", targets=["sp1/col1"], drop_rate=1.0)
    provider = make(emu)
    with pytest.raises(ProviderError) as info:  # every answer is lost: the client gives up ...
        provider.create(drive(), idempotency_key="idem-drop")
    assert info.value.retryable and TOKEN not in str(info.value)
    assert emu.stats["faults"]["drop"] == FAST.attempts
    assert len(state(emu)["connectors"]) == 1  # ... yet six committed attempts made one connector
    emu.config.drop_rate = 0.0
    again = provider.create(drive(), idempotency_key="idem-drop")  # the engine's later retry
    assert [c.id for c in provider.list(["sp1/col1"])] == [again.id]


def test_random_drops_never_duplicate(emulator):
    emu = emulator("aimable", targets=["sp1/col1"], drop_rate=0.5, seed=3)
    provider = make(emu)
    made = {provider.create(drive(name=f"c{i}", folders=[str(i)]), idempotency_key=f"idem-{i}").id
            for i in range(5)}
    assert emu.stats["faults"]["drop"] >= 1
    assert {c.id for c in provider.list(["sp1/col1"])} == made and len(made) == 5


def test_scope_change_is_one_patch(provider, emu):
    live = provider.create(drive(), idempotency_key="idem-s")
    changed = drive(folders=["NEWFOLDER"])
    updated = provider.update(changed, live, frozenset({"scope"}))
    assert updated.id == live.id and updated.fields == provider.desired_fields(changed)
    assert emu.stats["requests"][f"PATCH /v1/spaces/sp1/collections/col1/connectors/{live.id}"] == 1
    (listed,) = provider.list(["sp1/col1"])
    assert listed.fields["scope"] == {"folder_ids": ["NEWFOLDER"]} and listed.version != live.version


def test_credential_change_patches_the_credential_only(provider, emu):
    live = provider.create(drive(), idempotency_key="idem-c")
    before = state(emu)["connectors"][live.id]["_credential_fp"]
    provider.update(drive(token=TOKEN + "-rotated"), live, frozenset({"credentials"}))
    after = state(emu)["connectors"][live.id]
    assert after["_credential_fp"] != before and after["scope_config"] == {"folder_ids": ["1A2B3C4D", "5E6F7G8H"]}
    assert TOKEN not in str(state(emu))


def test_update_refuses_fields_that_force_a_replace(provider):
    live = provider.create(drive(), idempotency_key="idem-r")
    with pytest.raises(ProviderError, match="target"):
        provider.update(drive(target="sp1/col2"), live, frozenset({"target"}))


def test_delete_and_delete_again(provider, emu):
    live = provider.create(drive(), idempotency_key="idem-d")
    provider.delete(live)
    assert list(provider.list(["sp1/col1"])) == []
    provider.delete(live)  # already gone: success
    assert emu.stats["requests"][f"DELETE /v1/spaces/sp1/collections/col1/connectors/{live.id}"] == 2


def test_list_pages_through_the_cursor(provider, emu):
    made = [provider.create(drive(name=f"c{i}", folders=[str(i)]), idempotency_key=f"idem-p{i}").id for i in range(7)]
    provider.page_size = 3
    assert [c.id for c in provider.list(["sp1/col1"])] == made
    assert emu.stats["requests"]["GET /v1/spaces/sp1/collections/col1/connectors"] == 3


def test_list_of_a_deleted_collection_is_empty_but_forbidden_space_is_an_error(provider):
    assert list(provider.list(["sp1/gone"])) == []
    with pytest.raises(ProviderError) as info:
        list(provider.list(["elsewhere/col1"]))
    assert info.value.status == 403 and "permission denied" in str(info.value)


def test_wrong_api_key_is_401_with_a_clear_message(emu):
    provider = make(emu, api_key="not-the-key")
    with pytest.raises(ProviderError) as info:
        list(provider.list(["sp1/col1"]))
    assert info.value.status == 401
    assert "Missing or invalid access token" in str(info.value) and "api_key" in str(info.value)
    assert "not-the-key" not in str(info.value)


def test_invalid_scope_is_422_naming_the_field(provider):
    bad = Connector(name="b", provider="aim", source="google-drive", target="sp1/col1",
                    scope={"folder_ids": "1A2B3C4D"}, credentials={"access_token": Secret(TOKEN)})
    with pytest.raises(ProviderError) as info:
        provider.create(bad, idempotency_key="idem-bad")
    assert info.value.status == 422
    assert "body.scope_config.folder_ids: Value error, must be a non-empty list of non-empty strings" in str(info.value)
    assert TOKEN not in str(info.value)


def test_unknown_source_is_422_naming_provider_slug(provider):
    with pytest.raises(ProviderError, match=r"body\.provider_slug: Input should be "):
        provider.create(drive(source="myspace"), idempotency_key="idem-src")


def test_malformed_target_fails_before_any_call(provider, emu):
    with pytest.raises(ProviderError, match="space_id/collection_id"):
        provider.create(drive(target="just-a-collection"), idempotency_key="idem-t")
    assert emu.stats["requests"].get("total", 0) == 0


def test_faults_are_retried_to_the_same_end_state(emulator):
    emu = emulator("aimable", targets=["sp1/col1"], fail_rate=0.3, throttle_rate=0.3, seed=11)
    provider = make(emu)
    live = provider.create(drive(), idempotency_key="idem-f")
    provider.update(drive(folders=["X"]), live, frozenset({"scope"}))
    (listed,) = provider.list(["sp1/col1"])
    assert listed.fields["scope"] == {"folder_ids": ["X"]}
    job = provider.trigger_sync(listed)
    assert provider.get_sync(listed, job.id).id == job.id
    provider.delete(listed)
    assert list(provider.list(["sp1/col1"])) == []
    faults = emu.stats["faults"]
    assert faults.get("429", 0) >= 1 and sum(faults.get(s, 0) for s in ("500", "502", "503")) >= 1
    assert len(state(emu)["connectors"]) == 0


def _wait_done(provider, live, job_id, limit=5.0):
    deadline = time.time() + limit
    while True:
        job = provider.get_sync(live, job_id)
        if job.done or time.time() > deadline:
            return job
        time.sleep(0.05)


def test_sync_runs_to_completion(provider):
    live = provider.create(drive(), idempotency_key="idem-sync")
    job = provider.trigger_sync(live)
    assert job.status == "running" and job.progress == {"records_fetched": 0} and not job.done
    done = _wait_done(provider, live, job.id)
    assert done.status == "completed" and done.progress["records_fetched"] == 120 and done.finished_at
    status = provider.status(live)
    assert status.status == "active" and status.last_sync and status.last_sync.id == job.id


def test_sync_cancel_and_second_trigger_while_running(emulator):
    emu = emulator("aimable", targets=["sp1/col1"], sync_duration=5.0)
    provider = make(emu)
    live = provider.create(drive(), idempotency_key="idem-cancel")
    job = provider.trigger_sync(live)
    assert provider.trigger_sync(live).id == job.id  # one sync at a time: the running one is returned
    cancelled = provider.cancel_sync(live, job.id)
    assert cancelled.status == "cancelled" and cancelled.done
    assert provider.get_sync(live, job.id).status == "cancelled"
    assert provider.cancel_sync(live, job.id).status == "cancelled"  # cancelling an ended job is a no-op
    assert provider.trigger_sync(live).id != job.id


def test_sync_failure_is_reported(emulator):
    emu = emulator("aimable", targets=["sp1/col1"], sync_fail=True, sync_duration=0.2)
    provider = make(emu)
    live = provider.create(drive(), idempotency_key="idem-fail")
    done = _wait_done(provider, live, provider.trigger_sync(live).id)
    assert done.status == "failed" and done.error


def test_browse_through_the_adapter(provider):
    live = provider.create(drive(), idempotency_key="idem-b")
    top = provider.browse(live)
    assert top and top[0]["type"] == "folder"
    assert all(item["parent_id"] == top[0]["id"] for item in provider.browse(live, top[0]["id"]))


# -- pure helpers -------------------------------------------------------------------------------

def test_format_error_names_fields_and_never_the_input():
    body = {"detail": [{"loc": ["body", "credential", "access_token"], "msg": "Input should be a valid string",
                        "type": "string_type", "input": "leaked-secret-value"},
                       {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100",
                        "type": "less_than_equal"}]}
    text = format_error(422, body)
    assert text == ("invalid request: body.credential.access_token: Input should be a valid string; "
                    "query.limit: Input should be less than or equal to 100")
    assert "leaked" not in text
    assert format_error(401, {"detail": "Missing or invalid access token."}).startswith("authentication failed")
    assert "permission denied" in format_error(403, {"detail": "Insufficient permissions"})
    assert format_error(404, {"detail": "Connector not found"}) == "Connector not found"


@pytest.mark.parametrize("target", [None, "", "col", "/col", "sp/", "a/b/c"])
def test_split_target_rejects_malformed(target):
    with pytest.raises(ProviderError):
        split_target(target)


def test_secrets_stay_wrapped_in_values_the_adapter_returns(provider):
    live = provider.create(drive(), idempotency_key="idem-w")
    assert TOKEN not in repr(live) and REFRESH not in repr(live)
