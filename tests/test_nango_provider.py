"""The Nango adapter against the Nango emulator, over real HTTP on loopback."""
from __future__ import annotations

import time

import httpx
import pytest

from reconciler.errors import NotFound, ProviderError, ReconcileError
from reconciler.model import Connector, LiveConnector, ProviderConfig, Schedule, Secret
from reconciler.providers import provider_class
from reconciler.providers.nango import OWNER_TAG, OWNER_VALUE, STATE_TAG, NangoProvider

TOKEN = "tok-very-secret-4f9a"


def make_provider(emu, key: str = "test-key", **kwargs) -> NangoProvider:
    cls = provider_class("nango")
    assert cls is NangoProvider
    return cls(ProviderConfig(name="nango", type="nango", url=emu.url, api_key=Secret(key)), **kwargs)


def connector(name: str = "acme", *, scope=None, syncs=None, token: str = TOKEN, source: str = "github-prod"):
    return Connector(
        name=name, provider="nango", source=source,
        scope={"repo": "acme/docs", "branch": "main"} if scope is None else scope,
        syncs={"issues": Schedule(every=1800), "pull-requests": Schedule(manual=True)} if syncs is None else syncs,
        credentials={"type": Secret("OAUTH2"), "access_token": Secret(token)},
    )


def live_by_key(provider: NangoProvider) -> dict[str, LiveConnector]:
    return {live.key: live for live in provider.list([])}


def raw(emu) -> httpx.Client:
    return httpx.Client(base_url=emu.url, headers={"Authorization": "Bearer test-key"})


def assert_no_secret(live: LiveConnector, *secrets: str) -> None:
    text = repr(live) + str(live.fields) + str(live.extra)
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def setup(emulator):
    emu = emulator("nango", targets=["github-prod", "slack-main", "posthog-prod"], sync_creation_delay=0.05)
    provider = make_provider(emu)
    yield emu, provider
    provider.close()


def test_create_then_list_projects_equal_to_desired(setup):
    emu, provider = setup
    desired = connector()
    created = provider.create(desired, idempotency_key="k")
    assert provider.identity(desired) == created.key == "github-prod/acme"
    live = live_by_key(provider)["github-prod/acme"]
    assert live.fields == provider.desired_fields(desired)
    assert live.fields == {"source": "github-prod", "scope": {"repo": "acme/docs", "branch": "main"},
                           "syncs": {"issues": {"every": 1800}}}
    assert created.fields == live.fields
    assert live.owned is True and live.name == "acme" and live.target is None
    # the live side really is what Nango holds, not an echo of our request
    with raw(emu) as client:
        status = client.get("/sync/status", params={"provider_config_key": "github-prod", "syncs": "*"}).json()
    assert {s["name"]: s["frequency"] for s in status["syncs"]} == {"issues": "every 30 minutes",
                                                                    "pull-requests": "every 6 hours"}


def test_explicit_default_frequency_and_cron_interval_plan_nothing(setup):
    _, provider = setup
    desired = connector(syncs={"issues": Schedule(every=3600), "pull-requests": Schedule(cron="0 */2 * * *")},
                        scope={})
    provider.create(desired, idempotency_key="k")
    live = live_by_key(provider)["github-prod/acme"]
    # issues at its default (every hour) is absent on both sides; the step cron is a 2-hour interval
    assert provider.desired_fields(desired) == live.fields == {"source": "github-prod",
                                                               "syncs": {"pull-requests": {"every": 7200}}}


def test_metadata_key_removal_converges(setup):
    emu, provider = setup
    provider.create(connector(), idempotency_key="k")
    live = live_by_key(provider)["github-prod/acme"]
    smaller = connector(scope={"repo": "acme/docs"})
    provider.update(smaller, live, frozenset({"scope"}))
    after = live_by_key(provider)["github-prod/acme"]
    assert after.fields["scope"] == {"repo": "acme/docs"}
    assert after.fields == provider.desired_fields(smaller)
    provider.update(connector(scope={}), after, frozenset({"scope"}))
    emptied = live_by_key(provider)["github-prod/acme"]
    assert "scope" not in emptied.fields and emptied.fields == provider.desired_fields(connector(scope={}))


def test_sync_frequency_changes_and_reset_to_default(setup):
    _, provider = setup
    provider.create(connector(), idempotency_key="k")
    live = live_by_key(provider)["github-prod/acme"]
    changed = connector(syncs={"issues": Schedule(every=7200), "pull-requests": Schedule(every=600)})
    provider.update(changed, live, frozenset({"syncs"}))
    live = live_by_key(provider)["github-prod/acme"]
    assert live.fields["syncs"] == {"issues": {"every": 7200}, "pull-requests": {"every": 600}}
    # dropping a sync from the manifest (or `manual: true`) returns it to the integration default
    back = connector(syncs={"pull-requests": Schedule(manual=True)})
    provider.update(back, live, frozenset({"syncs"}))
    live = live_by_key(provider)["github-prod/acme"]
    assert "syncs" not in live.fields and live.fields == provider.desired_fields(back)


def test_ownership_tag_and_adoption_keeps_other_tags(setup):
    emu, provider = setup
    provider.create(connector(), idempotency_key="k")
    with raw(emu) as client:
        tags = client.get("/connections/acme", params={"provider_config_key": "github-prod"}).json()["tags"]
        assert tags == {OWNER_TAG: OWNER_VALUE}
        client.post("/connections", json={"provider_config_key": "slack-main", "connection_id": "hand-made",
                                          "credentials": {"type": "OAUTH2", "access_token": "k-hand"},
                                          "tags": {"team": "ops"}})
    hand = live_by_key(provider)["slack-main/hand-made"]
    assert hand.owned is False
    adopted = Connector(name="hand-made", provider="nango", source="slack-main", syncs={},
                        credentials={"type": Secret("OAUTH2"), "access_token": Secret("k-hand")})
    provider.update(adopted, hand, frozenset())
    again = live_by_key(provider)["slack-main/hand-made"]
    assert again.owned is True and again.extra["tags"] == {"team": "ops", OWNER_TAG: OWNER_VALUE}



def test_the_marker_names_the_state_and_yields_to_a_persons_tags(setup):
    """The marker names the state's lineage (``managed-by-state``), so a marked connection in no
    entry tells "this state forgot it" from "another state's". Nango keeps 10 tags at most (the
    spec's Tags: maxProperties): where a person's tags leave no room, the marker alone, which reads
    as "some state's" (the cautious side), never a refused write."""
    emu, provider = setup
    provider.state_lineage = "lineage-one"
    created = provider.create(connector(), idempotency_key="k")
    assert created.owner == "lineage-one" and not created.marked_by_another("lineage-one")
    live = live_by_key(provider)["github-prod/acme"]
    assert live.extra["tags"] == {OWNER_TAG: OWNER_VALUE, STATE_TAG: "lineage-one"}
    assert live.marked_by_another("lineage-two") and not live.marked_by_another("lineage-one")
    def adopt(name: str, tags: dict[str, str]) -> tuple[LiveConnector, LiveConnector]:
        with raw(emu) as client:
            client.post("/connections", json={"provider_config_key": "slack-main", "connection_id": name,
                                              "credentials": {"type": "OAUTH2", "access_token": "k-hand"},
                                              "tags": tags}).raise_for_status()
        before = live_by_key(provider)[f"slack-main/{name}"]
        provider.update(Connector(name=name, provider="nango", source="slack-main", syncs={},
                                  credentials={"type": Secret("OAUTH2"), "access_token": Secret("k-hand")}),
                        before, frozenset())
        return before, live_by_key(provider)[f"slack-main/{name}"]

    eight = {f"tag{i}": str(i) for i in range(8)}
    before, after = adopt("stale", {**eight, OWNER_TAG: OWNER_VALUE, STATE_TAG: "lineage-old"})
    assert before.owner == "lineage-old" and before.marked_by_another("lineage-one")
    assert after.extra["tags"] == {**eight, OWNER_TAG: OWNER_VALUE, STATE_TAG: "lineage-one"}  # re-marked as ours
    nine = {**eight, "tag8": "8"}
    before, after = adopt("crowded", {**nine, OWNER_TAG: OWNER_VALUE})
    assert after.extra["tags"] == {**nine, OWNER_TAG: OWNER_VALUE} and after.owner is None
    assert after.marked_by_another("lineage-one")

def test_credentials_change_reupserts_in_place(setup):
    emu, provider = setup
    provider.create(connector(), idempotency_key="k")
    live = live_by_key(provider)["github-prod/acme"]
    rotated = connector(token="tok-rotated-77c1")
    updated = provider.update(rotated, live, frozenset({"credentials"}))
    assert_no_secret(updated, TOKEN, "tok-rotated-77c1")
    with raw(emu) as client:
        got = client.get("/connections/acme", params={"provider_config_key": "github-prod"}).json()
    assert got["credentials"]["access_token"] == "tok-rotated-77c1"
    assert got["id"] == live.extra["nango_id"]  # same connection, not a new one
    assert got["metadata"] == {"repo": "acme/docs", "branch": "main"} and got["tags"] == {OWNER_TAG: OWNER_VALUE}
    assert live_by_key(provider)["github-prod/acme"].fields == provider.desired_fields(rotated)


def test_delete_and_404s(setup):
    emu, provider = setup
    desired = connector()
    provider.create(desired, idempotency_key="k")
    live = provider.lookup(desired)
    assert live is not None and live.fields == provider.desired_fields(desired)
    provider.delete(live)
    assert live_by_key(provider) == {}
    assert provider.lookup(desired) is None
    provider.delete(live)  # already gone counts as success
    with pytest.raises(NotFound):
        provider.update(desired, live, frozenset({"scope"}))


def test_401_is_a_clear_provider_error(setup):
    emu, _ = setup
    wrong = make_provider(emu, key="wrong-key-abcdef")
    with pytest.raises(ProviderError) as info:
        list(wrong.list([]))
    # not a UUID: the real server's invalid_secret_key_format (a well-formed unknown key: unknown_account)
    assert info.value.status == 401 and "invalid_secret_key_format" in str(info.value)
    assert "wrong-key-abcdef" not in str(info.value)
    wrong.close()


def test_400_and_unknown_integration_errors(setup):
    _, provider = setup
    with pytest.raises(NotFound) as info:
        provider.create(connector(source="nope"), idempotency_key="k")
    assert "not_found" in str(info.value)  # real server v0.71.4: an unknown integration on create
    bad = Connector(name="b", provider="nango", source="posthog-prod",
                    credentials={"type": Secret("API_KEY"), "api_key": Secret("k-wrong-spelling")})
    with pytest.raises(ProviderError) as info:
        provider.create(bad, idempotency_key="k")
    assert info.value.status == 400
    assert "invalid_body" in str(info.value) and "credentials.apiKey: Required" in str(info.value)
    assert "k-wrong-spelling" not in str(info.value)
    with pytest.raises(ReconcileError, match="need a `type`"):
        provider.create(Connector(name="c", provider="nango", source="github-prod",
                                  credentials={"apiKey": Secret("k-no-type")}), idempotency_key="k")


def test_pagination_reads_every_page(setup):
    emu, provider = setup
    for i in range(5):
        provider.create(connector(f"c{i}", syncs={}), idempotency_key=str(i))
    provider.page_size = 2
    before = emu.stats["requests"].get("GET /connections", 0)
    keys = [live.key for live in provider.list([])]
    assert keys == [f"github-prod/c{i}" for i in reversed(range(5))]  # newest first
    assert emu.stats["requests"]["GET /connections"] - before == 3


def test_list_call_budget(setup):
    _, provider = setup
    for i in range(3):
        provider.create(connector(f"c{i}"), idempotency_key=str(i))
    provider.create(connector("s", source="slack-main", syncs={"messages": Schedule(every=3600)}),
                    idempotency_key="s")
    fresh = make_provider(setup[0])
    lives = list(fresh.list([]))
    assert len(lives) == 4
    # one page, then per integration one sync-status and one functions (defaults) call; no per-connection GET
    assert fresh.http.counter.counts == {"list": 5}
    fresh.close()


def test_faults_are_retried_without_duplicates(emulator):
    emu = emulator("nango", targets=["github-prod"], fail_rate=0.25, throttle_rate=0.2, drop_rate=0.3, seed=7,
                   sync_creation_delay=0.05)
    provider = make_provider(emu)
    provider.http.retry = type(provider.http.retry)(attempts=12, base_delay=0.01, max_delay=0.05)
    for i in range(4):
        provider.create(connector(f"c{i}"), idempotency_key=str(i))
    lives = live_by_key(provider)
    assert sorted(lives) == [f"github-prod/c{i}" for i in range(4)]
    for live in lives.values():
        assert live.fields == provider.desired_fields(connector(live.name))
        provider.update(connector(live.name, scope={"repo": "x"}), live, frozenset({"scope"}))
        provider.delete(live)
    assert live_by_key(provider) == {}
    faults = emu.stats["faults"]
    assert faults.get("429", 0) > 0 and faults.get("drop", 0) > 0 and sum(faults.values()) >= 5
    provider.close()


def test_credentials_never_reach_live_objects(setup):
    _, provider = setup
    desired = connector()
    seen = [provider.create(desired, idempotency_key="k")]
    seen += list(provider.list([]))
    seen.append(provider.lookup(desired))
    seen.append(provider.update(connector(token="tok-second-5d2e"), seen[-1], frozenset({"credentials", "scope"})))
    seen.append(provider.lookup(desired))
    for live in seen:
        assert live is not None
        assert_no_secret(live, TOKEN, "tok-second-5d2e")


def test_trigger_sync_runs_to_completion(setup):
    _, provider = setup
    provider.create(connector(), idempotency_key="k")
    live = live_by_key(provider)["github-prod/acme"]
    job = provider.trigger_sync(live)
    assert not job.done
    deadline = time.time() + 5
    while not job.done and time.time() < deadline:
        time.sleep(0.05)
        job = provider.get_sync(live, job.id)
    assert job.status == "completed" and job.progress["records"] == 240 and job.finished_at
    status = provider.status(live)
    assert status.last_sync is not None and status.last_sync.status == "completed" and status.next_run


def test_failing_sync_reports_failed(emulator):
    emu = emulator("nango", targets=["github-prod"], sync_fail=True, sync_creation_delay=0.05)
    provider = make_provider(emu)
    live = provider.create(connector(), idempotency_key="k")
    job = provider.trigger_sync(live)
    deadline = time.time() + 5
    while not job.done and time.time() < deadline:
        time.sleep(0.05)
        job = provider.get_sync(live, job.id)
    assert job.status == "failed" and "issues" in (job.error or "")
    provider.close()


def test_lookup_in_an_unknown_integration_finds_nothing(setup):
    """Real server v0.71.4: GET with an unknown provider_config_key is 400 unknown_provider_config."""
    _, provider = setup
    assert provider.lookup(connector(source="no-such-integration", syncs={})) is None
