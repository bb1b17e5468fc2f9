"""Aimable conformance: each behaviour the emulator reproduces, and the adapter copes with, named by
the line of ``shared/seeds/aimable-collection-connectors.txt`` it comes from (the only source we
have of this platform). Where the seed is silent the emulator takes the stricter plausible choice
(``reconciler/scope_rules.py``, docs/providers.md), and the adapter must work with each plausible
alternative the emulator's knobs offer (paging, unknown status words)."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from conftest import EMU_HTTP, run_cli
from reconciler.http import RetryPolicy
from reconciler.model import ProviderConfig, Secret
from reconciler.providers import provider_class
from reconciler.providers.paging import TruncatedList

SEED = "seeds/aimable-collection-connectors.txt"
KEY = "aim-conf-key-5522"
SPACE, COLLECTION = "7a5f3b1d-8e2c-4f1a-b9c0-1d2e3f4a5b6c", "9c8d7e6f-5a4b-3c2d-1e0f-2a3b4c5d6e7f"
TARGET = f"{SPACE}/{COLLECTION}"
AUTH = {"Authorization": f"Bearer {KEY}"}
EXAMPLE = {  # lines 18-26, verbatim
    "provider_slug": "google-drive",
    "credential": {"access_token": "ya29.a0AfB_...", "refresh_token": "1//04..."},
    "scope_config": {"folder_ids": ["1A2B3C4D", "5E6F7G8H"]}}


@pytest.fixture
def aim(emulator):
    def start(**config):
        emu = emulator("aimable", api_key=KEY, targets=[TARGET], **config)
        adapter = provider_class("aimable")(ProviderConfig(name="aim", type="aimable", url=emu.url, api_key=Secret(KEY)))
        adapter.http.retry = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
        return emu, adapter

    return start


def url(emu) -> str:
    return f"{emu.url}/v1/spaces/{SPACE}/collections/{COLLECTION}/connectors"


def create(emu, body: dict, key: str = "abc123xyz") -> httpx.Response:
    return EMU_HTTP.post(url(emu), headers={**AUTH, "Idempotency-Key": key}, json=body)


def test_the_seeds_create_example_answers_201_in_the_seeds_shape(aim):
    """Lines 14-40: POST with ``Idempotency-Key`` -> 201 ``{"data": {id, collection_id,
    provider_slug, principal_id, scope_config, status: "active", created_at, updated_at}}``."""
    emu, _ = aim()
    r = create(emu, EXAMPLE)
    assert r.status_code == 201
    data = r.json()["data"]
    assert set(data) == {"id", "collection_id", "provider_slug", "principal_id", "scope_config", "status",
                         "created_at", "updated_at"}
    assert (data["collection_id"], data["provider_slug"], data["status"]) == (COLLECTION, "google-drive", "active")
    assert data["scope_config"] == EXAMPLE["scope_config"]


def test_idempotency_key_is_required(aim):
    """Line 10: "Idempotency-Key: Required header when creating a connector"."""
    emu, _ = aim()
    r = EMU_HTTP.post(url(emu), headers=AUTH, json=EXAMPLE)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


def test_a_key_outlives_its_connector_and_replays_the_first_answer(aim):
    """Line 10 names the key's purpose only; decided as Stripe-style keys (kept ~24 h whatever
    happens to the object): the same key and body replay the original answer even after a
    delete, another body with the key is 422."""
    emu, _ = aim()
    first = create(emu, EXAMPLE, key="k-1")
    cid = first.json()["data"]["id"]
    assert EMU_HTTP.delete(f"{url(emu)}/{cid}", headers=AUTH).status_code == 204
    again = create(emu, EXAMPLE, key="k-1")
    assert again.status_code == 201 and again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert create(emu, {**EXAMPLE, "scope_config": {"folder_ids": ["OTHER"]}}, key="k-1").status_code == 422


def test_errors_are_422_detail_loc_msg_and_never_echo_input(aim):
    """Lines 72-83: 422 ``{"detail": [{loc, msg, type}]}``, e.g. ``limit`` above 100. Decided
    (issue 18): unknown top-level and credential fields are refused too; no message quotes a value."""
    emu, _ = aim()
    r = EMU_HTTP.get(url(emu), headers=AUTH, params={"limit": 101})
    assert r.status_code == 422 and r.json() == {"detail": [
        {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100", "type": "less_than_equal"}]}
    r = create(emu, {**EXAMPLE, "name": "leak-me-not-1"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"] and "leak-me-not-1" not in r.text
    r = create(emu, {**EXAMPLE, "credential": {**EXAMPLE["credential"], "client_secret": "leak-me-not-2"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "credential", "client_secret"]
    assert "leak-me-not-2" not in r.text


def test_scope_config_is_optional(aim):
    """Line 13: "create a connector with credentials and optional scope"."""
    emu, _ = aim()
    r = create(emu, {"provider_slug": "slack", "credential": {"access_token": "xoxb-1"}})
    assert r.status_code == 201 and r.json()["data"]["scope_config"] == {}


def test_sync_trigger_and_get(aim):
    """Lines 45-61: trigger -> 202 ``{"data": {id, collection_connector_id, status: "running",
    records_fetched, metadata, created_at}}``; GET shows status, records_fetched, completed_at."""
    emu, _ = aim(sync_duration=5)
    cid = create(emu, EXAMPLE).json()["data"]["id"]
    r = EMU_HTTP.post(f"{url(emu)}/{cid}/sync", headers=AUTH)
    assert r.status_code == 202
    job = r.json()["data"]
    assert {"id", "collection_connector_id", "status", "records_fetched", "metadata", "created_at"} <= set(job)
    assert job["status"] == "running" and job["collection_connector_id"] == cid
    got = EMU_HTTP.get(f"{url(emu)}/{cid}/sync/{job['id']}", headers=AUTH).json()["data"]
    assert {"status", "records_fetched", "completed_at"} <= set(got)


def test_completed_at_means_finished_whatever_the_word(aim):
    """Line 61: track status, records_fetched and completed_at. A set ``completed_at`` ends the
    sync whatever the word; an unknown word is shown, not waited on (issue 18)."""
    from reconciler.providers.aimable import _sync_job

    assert _sync_job({"id": "s", "status": "running", "completed_at": "2023-10-01T12:06:00Z"}).status == "completed"
    odd = _sync_job({"id": "s", "status": "Archived"})
    assert odd.status == "archived" and odd.done


# -- paging: "all operations support pagination" (line 86), limit <= 100 (line 79), nothing more ----

@pytest.mark.parametrize("mode", ["cursor", "link", "offset"])
def test_the_adapter_walks_every_plausible_paging(aim, mode):
    emu, adapter = aim(paging=mode)
    ids = {create(emu, {**EXAMPLE, "scope_config": {"folder_ids": [str(i)]}}, key=f"k-{i}").json()["data"]["id"]
           for i in range(7)}
    adapter.page_size = 3
    assert sorted(c.id for c in adapter.list([TARGET])) == sorted(ids)


def test_a_list_it_cannot_see_past_is_refused(aim):
    emu, adapter = aim(paging="none")
    for i in range(4):
        create(emu, {**EXAMPLE, "scope_config": {"folder_ids": [str(i)]}}, key=f"k-{i}")
    adapter.page_size = 3
    with pytest.raises(TruncatedList, match="may be truncated"):
        list(adapter.list([TARGET]))


# -- idempotency keys through the CLI ------------------------------------------------------------

def _root(tmp_path: Path, emu, scope: dict | None = None) -> Path:
    root = tmp_path / "m"
    root.mkdir(exist_ok=True)
    doc = {"version": 1, "providers": {"aim": {"type": "aimable", "url": emu.url, "api_key": "${KEY}"}},
           "connectors": {"drive": {"provider": "aim", "source": "google-drive", "target": TARGET,
                                    "scope": scope or {"folder_ids": ["1A2B3C4D"]},
                                    "credentials": {"access_token": "${TOK}"}}}}
    (root / "connectors.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def _live(emu) -> dict:
    return EMU_HTTP.get(emu.url + "/_emulator/state").json()["connectors"]


def _state_ids(root: Path) -> list[str]:
    r = run_cli("state", "list", str(root), "--format", "json", env={"KEY": KEY, "TOK": "tok-aim-1"})
    import json

    return [e["id"] for e in json.loads(r.stdout)]


def test_deleted_out_of_band_and_recreated_unchanged_is_a_new_live_connector(aim, tmp_path):
    """The issue-18 bug: the key was derived from name and content only, so re-creating an
    unchanged connector someone deleted sent the same key, the platform replayed its first answer,
    and the state recorded a dead id. Each create attempt now has its own nonce."""
    emu, _ = aim()
    root = _root(tmp_path, emu)
    env = {"KEY": KEY, "TOK": "tok-aim-1"}
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    (first,) = _live(emu)
    assert EMU_HTTP.delete(f"{url(emu)}/{first}", headers=AUTH).status_code == 204
    r = run_cli("apply", str(root), "--yes", env=env)
    assert r.code == 0 and "1 added" in r.stdout, r.output
    (second,) = _live(emu)
    assert second != first and _state_ids(root) == [second]
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).code == 0


def test_a_retried_create_attempt_reuses_its_key_across_runs(aim, tmp_path):
    """An attempt whose answers were all lost (the platform made the connector each time, the
    connection dropped before the answer) is retried by the next run with the same key: the
    platform replays, and there is one connector, recorded."""
    emu, _ = aim(drop_rate=1.0)
    root = _root(tmp_path, emu)
    env = {"KEY": KEY, "TOK": "tok-aim-1"}
    r = run_cli("apply", str(root), "--yes", env=env)
    assert r.code == 1, r.output
    assert len(_live(emu)) == 1  # the first attempt made it; the retries were replays
    emu.config.drop_rate = 0.0
    r = run_cli("apply", str(root), "--yes", env=env)
    assert r.code == 0 and "1 added" in r.stdout, r.output
    (only,) = _live(emu)
    assert _state_ids(root) == [only]
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).code == 0


def test_sync_wait_shows_an_unknown_final_word_instead_of_waiting(aim, tmp_path):
    emu, _ = aim(sync_duration=0.2, sync_status_word="archived")
    root = _root(tmp_path, emu)
    env = {"KEY": KEY, "TOK": "tok-aim-1"}
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    r = run_cli("sync", str(root), "--wait", "--timeout", "20s", env=env)
    assert r.code == 0 and "archived" in r.output and "timed out" not in r.output, r.output
