"""The Airweave adapter against the emulator over loopback: the real HTTP path end to end."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import EMU_HTTP
from reconciler.errors import NotFound, OutcomeUnknown, ProviderError
from reconciler.http import CallCounter, RetryPolicy
from reconciler.model import Connector, ProviderConfig, Schedule, Secret
from reconciler.plan.ownership import three_way
from reconciler.providers.airweave import AirweaveProvider

COLLECTION = "documentation-ab123"
TOKEN = "ghp_adapter_secret_987654"


def converged(live: dict, desired: dict) -> bool:
    """Equal as the planner compares (field ownership): a declared None ("manual") meets no schedule."""
    return three_way(live, desired, desired) == []


def make(emu, key: str = "test-key", counter: CallCounter | None = None) -> AirweaveProvider:
    return AirweaveProvider(ProviderConfig(name="aw", type="airweave", url=emu.url, api_key=Secret(key)),
                            counter=counter)


def github(name: str = "docs-github", **kw) -> Connector:
    kw.setdefault("scope", {"repo_name": "company/docs", "branch": "main"})
    kw.setdefault("credentials", {"personal_access_token": Secret(TOKEN)})
    return Connector(name=name, provider="aw", source="github", target=COLLECTION, **kw)


@pytest.fixture
def env(emulator):
    emu = emulator("airweave", targets=[COLLECTION, "other-xy789"])
    provider = make(emu)
    yield emu, provider
    provider.close()


def test_create_then_list_and_read_project_equal(env):
    emu, p = env
    desired = github(description="Product docs", schedule=Schedule(cron="0 */6 * * *"), sync_on_apply=True)
    created = p.create(desired, idempotency_key="k1")
    assert converged(created.fields, p.desired_fields(desired))
    assert created.extra["sync_started"] and created.status == "syncing"
    listed = list(p.list([COLLECTION, "other-xy789", "missing-collection"]))
    assert [(l.key, l.id, l.complete) for l in listed] == [("docs-github", created.id, False)]
    assert listed[0].version == created.version
    read = p.read(listed[0])
    assert read.complete and converged(read.fields, p.desired_fields(desired))
    assert p.identity(desired) == read.key


@pytest.mark.parametrize("schedule", [None, Schedule(manual=True), Schedule(cron="0  3 * * *")])
def test_schedule_forms_round_trip(env, schedule):
    # GitHub's config class requires repo_name (the emulator follows the real class now), and the
    # spacing of a cron is normalised before it is sent (the server 422s on two spaces)
    _, p = env
    desired = github(schedule=schedule)
    assert converged(p.read(p.create(desired, idempotency_key="k")).fields, p.desired_fields(desired))


def test_continuous_is_refused_not_sent(env):
    # the real server ignores continuous (schedule: null): it could never converge
    emu, p = env
    with pytest.raises(ProviderError, match="continuous"):
        p.create(github(schedule=Schedule(continuous=True)), idempotency_key="k")
    assert list(p.list([COLLECTION])) == []


def test_update_each_field_in_place(env):
    _, p = env
    desired = github(description="old", schedule=Schedule(cron="0 3 * * *"))
    live = p.create(desired, idempotency_key="k")
    steps = [
        ("description", github(description="new", schedule=Schedule(cron="0 3 * * *"))),
        ("description", github(schedule=Schedule(cron="0 3 * * *"))),
        ("scope", github(scope={"repo_name": "company/docs", "branch": "release"}, schedule=Schedule(cron="0 3 * * *"))),
        ("schedule", github(scope={"repo_name": "company/docs", "branch": "release"},
                            schedule=Schedule(cron="*/30 * * * *"))),
        ("schedule", github(scope={"repo_name": "company/docs", "branch": "release"}, schedule=Schedule(manual=True))),
    ]
    for field, want in steps:
        before = live.version
        live = p.update(want, live, frozenset({field}))
        assert converged(live.fields, p.desired_fields(want)), field
        # the real server moves modified_at on name, description and config only
        assert (live.version != before) == (field != "schedule")
        assert converged(p.read(live).fields, p.desired_fields(want))


def test_credentials_update_reauthenticates_without_echo(env):
    emu, p = env
    live = p.create(github(), idempotency_key="k")
    rotated = github(credentials={"personal_access_token": Secret(TOKEN + "-rotated")})
    updated = p.update(rotated, live, frozenset({"credentials"}))
    assert converged(updated.fields, p.desired_fields(rotated))
    state = EMU_HTTP.get(f"{emu.url}/_emulator/state").text
    assert TOKEN not in state and updated.id in state


def test_replace_only_fields_are_refused_in_place(env):
    _, p = env
    live = p.create(github(), idempotency_key="k")
    with pytest.raises(ProviderError, match="target"):
        p.update(github(), live, frozenset({"target"}))


def test_delete_and_404_handling(env):
    _, p = env
    live = p.create(github(), idempotency_key="k")
    p.delete(live)
    p.delete(live)  # already gone is success
    assert list(p.list([COLLECTION])) == []
    with pytest.raises(NotFound):
        p.read(live)


def test_oauth_browser_is_pending_with_auth_url(env):
    _, p = env
    desired = Connector(name="team-slack", provider="aw", source="slack", target=COLLECTION,
                        credentials={"type": Secret("oauth_browser")}, sync_on_apply=True)
    live = p.create(desired, idempotency_key="k")
    assert live.status == "pending_auth" and live.extra["auth_url"] and "sync_started" not in live.extra
    status = p.status(live)
    assert status.status == "pending_auth" and status.auth_url == live.extra["auth_url"] and status.last_sync is None


def test_oauth_token_connector(env):
    _, p = env
    desired = Connector(name="wiki-notion", provider="aw", source="notion", target=COLLECTION,
                        credentials={"type": Secret("oauth_token"), "access_token": Secret("at-" + TOKEN)})
    live = p.create(desired, idempotency_key="k")
    # sync_on_apply is off, so sync_immediately=False is sent and no job starts
    assert live.status == "active" and live.extra["auth_method"] == "oauth_token"
    assert "sync_started" not in live.extra
    assert converged(live.fields, p.desired_fields(desired))


def test_pagination_counts_list_calls(emulator):
    emu = emulator("airweave", targets=[COLLECTION], page_limit_max=50)
    counter = CallCounter()
    p = make(emu, counter=counter)
    p.page_size = 50
    with httpx.Client(base_url=emu.url, headers={"x-api-key": "test-key"}) as c:
        def post(i: int) -> int:
            return c.post("/source-connections", json={
                "name": f"conn-{i:04d}", "short_name": "github", "readable_collection_id": COLLECTION,
                "config": {"repo_name": "company/docs"},  # required by GitHub's config class
                "sync_immediately": False, "authentication": {"credentials": {"personal_access_token": "x"}}}).status_code
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(post, range(120))) == {200}
    names = [live.key for live in p.list([COLLECTION])]
    assert sorted(names) == [f"conn-{i:04d}" for i in range(120)]
    assert counter.counts["list"] == 3  # 50 + 50 + 20: a short page ends the listing
    p.close()


def test_pagination_beyond_the_1000_cap(emulator):
    emu = emulator("airweave", targets=[COLLECTION])
    counter = CallCounter()
    p = make(emu, counter=counter)
    with httpx.Client(base_url=emu.url, headers={"x-api-key": "test-key"}) as c:
        def post(i: int) -> int:
            return c.post("/source-connections", json={
                "name": f"conn-{i:04d}", "short_name": "github", "readable_collection_id": COLLECTION,
                "config": {"repo_name": "company/docs"},  # required by GitHub's config class
                "sync_immediately": False, "authentication": {"credentials": {"personal_access_token": "x"}}}).status_code
        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(post, range(1001))) == {200}
    assert len({live.id for live in p.list([COLLECTION])}) == 1001
    assert counter.counts["list"] == 2
    p.close()


def test_the_pages_the_state_predicts_are_fetched_at_once(emulator):
    """The list has no total: the state's count per collection says how many pages to ask for in
    one round trip. Right, that is the minimum; fewer live than recorded, the extra pages are empty
    calls; more live, the listing goes on page by page. Every connection is listed once either way."""
    from types import SimpleNamespace

    emu = emulator("airweave", targets=[COLLECTION], page_limit_max=50)
    with httpx.Client(base_url=emu.url, headers={"x-api-key": "test-key"}) as c:
        for i in range(120):
            assert c.post("/source-connections", json={
                "name": f"conn-{i:04d}", "short_name": "github", "readable_collection_id": COLLECTION,
                "config": {"repo_name": "company/docs"}, "sync_immediately": False,
                "authentication": {"credentials": {"personal_access_token": "x"}}}).status_code == 200
    for recorded, calls in ((120, 3), (200, 5), (40, 3), (0, 3)):
        counter = CallCounter()
        p = make(emu, counter=counter)
        p.page_size = 50
        p.recall([SimpleNamespace(target=COLLECTION, id=f"x{i}", key=f"k{i}") for i in range(recorded)])
        names = [live.key for live in p.list([COLLECTION])]
        assert sorted(names) == [f"conn-{i:04d}" for i in range(120)], recorded
        if not recorded:  # nothing recorded there: its collection is asked about beside the listing
            assert p._collections_early is not None and p._collections_early[1].exception(timeout=10)  # limit=1000 > 50
            calls += 1
        assert counter.counts["list"] == calls, (recorded, counter.counts)
        p.close()


def test_a_plan_asks_whether_a_collection_it_owns_nothing_in_exists_beside_its_listing(emulator):
    """The real server lists an unknown collection as []: creates into a collection the state holds
    nothing in need GET /collections. It goes out with the listing, not one round trip after it,
    and answers missing_targets without a call of its own; outside a plan (no recall) it is not made."""
    emu = emulator("airweave", targets=[COLLECTION])
    counter = CallCounter()
    p = make(emu, counter=counter)
    p.recall([])
    assert list(p.list([COLLECTION, "nope"])) == []
    assert p.missing_targets([COLLECTION, "nope"]) == {"nope"}
    assert counter.counts["list"] == 3  # two listings and one GET /collections
    assert p.missing_targets(["nope"]) == {"nope"} and counter.counts["list"] == 4  # asked again: a call
    p.close()
    counter = CallCounter()
    p = make(emu, counter=counter)
    assert list(p.list([COLLECTION])) == [] and p._collections_early is None
    assert counter.counts["list"] == 1
    p.close()


def test_wrong_key_is_a_clear_error(env):
    emu, _ = env
    p = make(emu, key="wrong-key")
    with pytest.raises(ProviderError) as err:
        list(p.list([COLLECTION]))
    assert err.value.status == 403 and "API key rejected" in str(err.value) and "wrong-key" not in str(err.value)
    p.close()


def test_validation_error_message_is_readable_and_secret_free(env):
    _, p = env
    with pytest.raises(ProviderError) as err:
        p.create(github(name="abc"), idempotency_key="k")
    assert err.value.status == 422 and "name: String should have at least 4 characters" in str(err.value)
    with pytest.raises(ProviderError) as err:
        p.create(github(credentials={"token": Secret(TOKEN)}), idempotency_key="k")
    assert "authentication.credentials.personal_access_token: Field required" in str(err.value)
    assert TOKEN not in str(err.value)


def test_sync_lifecycle(env):
    _, p = env
    # a schedule: a connection created with cron null has no sync to run at all
    live = p.create(github(sync_on_apply=True, schedule=Schedule(cron="0 4 * * *")), idempotency_key="k")
    first = live.extra["sync_started"]
    # the create's own sync is still running: triggering again returns it rather than failing
    assert p.trigger_sync(live).id == first
    deadline = time.time() + 5
    while not (job := p.get_sync(live, first)).done and time.time() < deadline:
        time.sleep(0.05)
    assert job.status == "completed" and job.progress["inserted"] > 0 and job.finished_at
    second = p.trigger_sync(live)
    assert second.id != first and second.status in ("queued", "running")
    cancelled = p.cancel_sync(live, second.id)
    assert cancelled.status == "cancelled" and cancelled.done
    assert p.cancel_sync(live, first).status == "completed"  # already finished: reported as it ended
    status = p.status(p.update(github(schedule=Schedule(cron="0 3 * * *")), live, frozenset({"schedule"})))
    assert status.status == "active" and status.last_sync.id == second.id and status.next_run


def test_a_pending_sync_that_ends_before_it_is_looked_up_is_the_one_returned(env):
    """A trigger refused "already pending" reads the jobs; when the pending one has just ended (a
    busy CI box), it is the sync asked for, not an error (seen once in the suite as a 400)."""
    _, p = env
    live = p.create(github(sync_on_apply=True, schedule=Schedule(cron="0 4 * * *")), idempotency_key="k")
    first = live.extra["sync_started"]
    read_jobs = p._jobs

    def after_it_ended(live_, limit=100):
        deadline = time.time() + 5
        while not all(j["status"] in ("completed", "failed", "cancelled") for j in read_jobs(live_, limit)):
            assert time.time() < deadline
            time.sleep(0.02)
        return read_jobs(live_, limit)

    p._jobs = after_it_ended
    job = p.trigger_sync(live)
    assert job.id == first and job.done


def test_failed_sync_is_reported(emulator):
    emu = emulator("airweave", targets=[COLLECTION], sync_fail=True, sync_duration=0.1)
    p = make(emu)
    live = p.create(github(sync_on_apply=True, schedule=Schedule(cron="0 4 * * *")), idempotency_key="k")
    time.sleep(0.15)
    status = p.status(live)
    assert status.status == "error" and status.last_sync.status == "failed" and status.last_sync.error
    p.close()


def test_throttling_and_5xx_are_retried(emulator):
    emu = emulator("airweave", targets=[COLLECTION], throttle_rate=0.4, seed=7)
    p = make(emu)
    p.http.retry = RetryPolicy(attempts=10, base_delay=0.01)  # same logic, shorter sleeps
    lives = [p.create(github(name=f"conn-{i}"), idempotency_key=str(i)) for i in range(6)]
    assert len({l.id for l in lives}) == 6
    assert emu.stats["faults"].get("429", 0) > 0
    emu.config.throttle_rate = 0.0
    emu.config.fail_rate = 0.4
    listed = list(p.list([COLLECTION]))
    assert sorted(l.key for l in listed) == [f"conn-{i}" for i in range(6)]
    for live in listed:
        assert converged(p.read(live).fields, p.desired_fields(github(name=live.key)))
        p.update(github(name=live.key, description="d"), live, frozenset({"description"}))
    assert sum(emu.stats["faults"].get(s, 0) for s in ("500", "502", "503")) > 0
    p.close()


def test_dropped_create_is_outcome_unknown_and_lookup_finds_it(emulator):
    emu = emulator("airweave", targets=[COLLECTION], drop_rate=1.0)
    p = make(emu)
    desired = github(description="lost answer")
    with pytest.raises(OutcomeUnknown):
        p.create(desired, idempotency_key="k")
    found = p.lookup(desired)
    assert found is not None and found.complete and converged(found.fields, p.desired_fields(desired))
    assert p.lookup(github(name="never-made")) is None
    p.close()


def test_config_and_schedule_removal_go_as_two_patches(emulator):
    # the real server (32cfea0c) answers 500 MissingGreenlet to both in one PATCH, every time
    emu = emulator("airweave", targets=[COLLECTION])
    counter = CallCounter()
    p = make(emu, counter=counter)
    live = p.create(github(schedule=Schedule(cron="0 3 * * *")), idempotency_key="k")
    want = github(scope={"repo_name": "company/wiki"}, schedule=Schedule(manual=True))
    before = dict(counter.counts)
    updated = p.update(want, live, frozenset({"scope", "schedule"}))
    assert counter.counts["update"] - before.get("update", 0) == 2
    assert converged(updated.fields, p.desired_fields(want))
    p.close()


def test_unknown_github_repository_names_connector_repo_and_branch(env):
    _, p = env
    with pytest.raises(ProviderError) as err:
        p.create(github(scope={"repo_name": "company/not-found", "branch": "main"}), idempotency_key="k")
    text = str(err.value)
    assert err.value.status == 400 and "'docs-github'" in text and "company/not-found" in text and "'main'" in text
