"""Airstore end to end: the CLI (and the adapter) against the strict emulator over loopback.

The emulator answers as the real server does (``beam-cloud/airstore`` 6abcbac2; see
``tests/conformance/test_airstore.py``): internal numbers for workspace and member, UUID external ids,
no ``extra`` in answers. These tests show the adapter converging anyway.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import EMU_HTTP, run_cli
from reconciler.errors import NotFound, ProviderError
from reconciler.http import RetryPolicy
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class

ADMIN = "admin-token-4242"
WS = "8a1f0d2e-3b4c-4d5e-8f60-718293a4b5c6"
ALICE = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"
BOB = "9e8d7c6b-5a49-4382-b716-0f1e2d3c4b5a"
TARGETS = [WS, f"{WS}/{ALICE}", f"{WS}/{BOB}"]
ENV = {"KEY": ADMIN, "GMAIL_TOKEN": "ya29.shared-token-1", "ALICE_TOKEN": "ya29.alice-token-2"}
POSTS = f"POST /api/v1/workspaces/{WS}/connections"


def manifest(url: str, *, scope: str = "https://www.googleapis.com/auth/gmail.readonly",
             extra: dict | None = None, with_alice: bool = True, with_team: bool = True) -> str:
    lines = ["version: 1", "providers:", "  store:", "    type: airstore", f"    url: {url}", "    api_key: ${KEY}",
             "connectors:"]
    if with_team:
        lines += ["  team-gmail:", "    provider: store", "    source: gmail", f"    target: {WS}",
                  "    scope:", f"      scope: {scope}"]
        if extra:
            lines.append("      extra:")
            lines += [f"        {k}: {v}" for k, v in extra.items()]
        lines += ["    credentials:", "      access_token: ${GMAIL_TOKEN}"]
    if with_alice:
        lines += ["  alice-gmail:", "    provider: store", "    source: gmail", f"    target: {WS}",
                  f"    member: {ALICE}", "    credentials:", "      access_token: ${ALICE_TOKEN}"]
    return "\n".join(lines) + "\n"


def raw_list(emu, token: str = ADMIN) -> list[dict]:
    r = EMU_HTTP.get(f"{emu.url}/api/v1/workspaces/{WS}/connections", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()["data"] or []


def posts(emu) -> int:
    return emu.stats["requests"].get(POSTS, 0)


@pytest.fixture
def project(emulator, tmp_path: Path):
    emu = emulator("airstore", api_key=ADMIN, targets=TARGETS)
    path = tmp_path / "connectors.yaml"

    def run(*args: str, **env: str):
        return run_cli(*args, env={**ENV, **env})

    return emu, path, run


def test_shared_and_member_connection_replan_clean(project):
    emu, path, run = project
    path.write_text(manifest(emu.url))
    result = run("apply", str(path), "--yes")
    assert result.code == 0, result.output
    conns = raw_list(emu)
    assert sorted(c.get("member_id") is None for c in conns) == [False, True]
    assert all(isinstance(c["workspace_id"], int) for c in conns)  # the server's numbers, not WS
    # a fresh process, nothing known but the state: the internal member number maps back to ALICE
    result = run("plan", str(path), "--detailed-exitcode")
    assert result.code == 0, result.output
    assert "No changes." in result.stdout


def test_scope_change_is_one_upsert_keeping_the_external_id(project):
    emu, path, run = project
    path.write_text(manifest(emu.url))
    assert run("apply", str(path), "--yes").code == 0
    before = {c["integration_type"] + str(c.get("member_id")): c["external_id"] for c in raw_list(emu)}
    sent = posts(emu)
    path.write_text(manifest(emu.url, scope="https://www.googleapis.com/auth/gmail.modify"))
    result = run("apply", str(path), "--yes")
    assert result.code == 0, result.output
    assert "1 changed" in result.stdout and "0 replaced" in result.stdout
    assert posts(emu) - sent == 1
    after = {c["integration_type"] + str(c.get("member_id")): c["external_id"] for c in raw_list(emu)}
    assert after == before
    shared = next(c for c in raw_list(emu) if "member_id" not in c)
    assert shared["scope"] == "https://www.googleapis.com/auth/gmail.modify"
    # the upsert replaces the credential set: a scope-only change still sent the token
    record = EMU_HTTP.get(emu.url + "/_emulator/state").json()["connections"][shared["external_id"]]
    assert record["credential_fields"] == ["access_token"]
    assert run("plan", str(path), "--detailed-exitcode").code == 0


def test_removed_connector_is_really_gone(project):
    emu, path, run = project
    path.write_text(manifest(emu.url))
    assert run("apply", str(path), "--yes").code == 0
    path.write_text(manifest(emu.url, with_alice=False))
    result = run("apply", str(path), "--yes")
    assert result.code == 0, result.output
    assert "1 destroyed" in result.stdout
    assert [c.get("member_id") for c in raw_list(emu)] == [None]  # a follow-up list: Alice's is absent
    assert run("plan", str(path), "--detailed-exitcode").code == 0


def test_extra_change_is_one_upsert_then_clean(project):
    emu, path, run = project
    path.write_text(manifest(emu.url, extra={"label": "INBOX"}))
    assert run("apply", str(path), "--yes").code == 0
    assert run("plan", str(path), "--detailed-exitcode").code == 0
    state = EMU_HTTP.get(emu.url + "/_emulator/state").json()["connections"]
    first = next(c for c in state.values() if c["member"] is None)["extra_fingerprint"]
    sent = posts(emu)
    path.write_text(manifest(emu.url, extra={"label": "ARCHIVE"}))
    result = run("plan", str(path), "--detailed-exitcode")
    assert result.code == 2 and "scope.extra" in result.stdout and "ARCHIVE" not in result.stdout
    result = run("apply", str(path), "--yes")
    assert result.code == 0 and "1 changed" in result.stdout, result.output
    assert posts(emu) - sent == 1
    state = EMU_HTTP.get(emu.url + "/_emulator/state").json()["connections"]
    assert next(c for c in state.values() if c["member"] is None)["extra_fingerprint"] != first
    assert run("plan", str(path), "--detailed-exitcode").code == 0


def test_upsert_outside_the_reconciler_is_put_right(project):
    """Someone re-posts the shared connection (new token, no extra): extra and credentials are gone on
    the server and Airstore cannot show it; the moved ``updated_at`` makes the plan send them again."""
    emu, path, run = project
    path.write_text(manifest(emu.url, extra={"label": "INBOX"}))
    assert run("apply", str(path), "--yes").code == 0
    r = EMU_HTTP.post(f"{emu.url}/api/v1/workspaces/{WS}/connections", headers={"Authorization": f"Bearer {ADMIN}"},
                   json={"integration_type": "gmail", "access_token": "ya29.someone-else",
                         "scope": "https://www.googleapis.com/auth/gmail.readonly"})
    assert r.status_code == 201
    result = run("plan", str(path), "--detailed-exitcode")
    assert result.code == 2 and "scope.extra" in result.stdout and "1 to change" in result.stdout, result.output
    assert run("apply", str(path), "--yes").code == 0
    assert run("plan", str(path), "--detailed-exitcode").code == 0


def test_member_token_cannot_delete_the_shared_connection(project):
    emu, path, run = project
    path.write_text(manifest(emu.url))
    assert run("apply", str(path), "--yes").code == 0
    bob = EMU_HTTP.post(emu.url + "/_emulator/members", json={"workspace_id": WS, "member_id": BOB}).json()["data"]
    # Bob's token runs the same state without team-gmail: deleting the shared one needs an admin token
    path.write_text(manifest(emu.url, with_team=False))
    result = run("apply", str(path), "--yes", KEY=bob["token"])
    assert result.code == 1, result.output
    assert "team-gmail" in result.output and "admin token" in result.output and "role is admin" in result.output
    assert bob["token"] not in result.output
    assert sorted(c.get("member_id") is None for c in raw_list(emu)) == [False, True]  # nothing removed


@pytest.mark.parametrize("change, message", [
    (lambda m: m.replace("gmail.readonly", "gmail.readonly" + "x" * 500), "at most 512 characters"),
    (lambda m: m.replace(ALICE, "mem_alice"), "a UUID"),
    (lambda m: m.replace("source: gmail", "source: " + "g" * 51, 1), "1 to 50 characters"),
])
def test_permanent_500s_refused_at_validate_with_the_line(project, change, message):
    emu, path, run = project
    path.write_text(change(manifest(emu.url)))
    result = run("plan", str(path))
    assert result.code == 1 and message in result.output, result.output
    assert f"{path.name}:" in result.output
    assert "Traceback" not in result.output
    assert emu.stats["requests"].get("total", 0) == 0


def test_any_integration_type_up_to_50_characters_validates(project):
    emu, path, run = project
    path.write_text(manifest(emu.url).replace("source: gmail", "source: weather", 1))
    assert run("validate", str(path)).code == 0


# -- the adapter over loopback -------------------------------------------------------------------
@pytest.fixture
def airstore(emulator):
    def start(**config):
        config.setdefault("targets", TARGETS)
        emu = emulator("airstore", api_key=ADMIN, **config)
        provider = provider_class("airstore")(
            ProviderConfig(name="as", type="airstore", url=emu.url, api_key=Secret(ADMIN)))
        provider.http.retry = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05)
        return emu, provider

    return start


def gmail(token: str = "ya29.first-token", scope: str = "https://www.googleapis.com/auth/gmail.readonly",
          member: str | None = None, **kw) -> Connector:
    return Connector(name="team-gmail", provider="as", source="gmail", target=WS, scope={"scope": scope},
                     member=member, credentials={"access_token": Secret(token), "refresh_token": Secret("1//refresh-xyz")},
                     **kw)


def emu_state(emu) -> dict:
    return EMU_HTTP.get(emu.url + "/_emulator/state").json()


def test_permanent_500_is_not_retried(airstore):
    emu, p = airstore()
    with pytest.raises(ProviderError) as err:
        p.create(gmail(scope="s" * 513), idempotency_key="k")
    assert err.value.status == 500 and "character varying(512)" in str(err.value)
    assert not err.value.retryable and p.http.counter.counts["create"] == 1


def test_transient_faults_are_retried(airstore):
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
    assert emu.stats["faults"]["drop"] == 1 and p.http.counter.counts["create"] == 2
    assert list(emu_state(emu)["connections"]) == [live.id]


def test_unknown_workspace(airstore):
    emu, p = airstore()
    assert list(p.list(["ws_missing"])) == []
    with pytest.raises(NotFound, match="workspace not found"):
        p.create(Connector(name="x", provider="as", source="github", target="ws_missing",
                           credentials={"access_token": Secret("ghp_abcdef")}), idempotency_key="k")


def test_unknown_credential_field_fails_before_any_call(airstore):
    emu, p = airstore()
    c = Connector(name="x", provider="as", source="github", target=WS, credentials={"password": Secret("hunter2-pw")})
    with pytest.raises(ProviderError, match="unknown credential field"):
        p.create(c, idempotency_key="k")
    assert p.http.counter.total == 0


def test_member_token_refusal_names_the_connector_and_the_token(airstore):
    emu, _ = airstore()
    bob = EMU_HTTP.post(emu.url + "/_emulator/members", json={"workspace_id": WS, "member_id": BOB}).json()["data"]
    as_bob = provider_class("airstore")(ProviderConfig(name="bob", type="airstore", url=emu.url,
                                                       api_key=Secret(bob["token"])))
    with pytest.raises(ProviderError) as err:
        as_bob.create(gmail(member=ALICE), idempotency_key="k")
    text = str(err.value)
    assert err.value.status == 403 and "'team-gmail'" in text and f"member {ALICE}'s own token" in text
    assert as_bob.create(gmail(member=BOB), idempotency_key="k").key == f"{WS}/{BOB}/gmail"


def test_credentials_never_returned_or_stored(airstore, tmp_path):
    emu, p = airstore(data_dir=str(tmp_path))
    secrets = ["ya29.first-token", "1//refresh-xyz", "exa_key_123456"]
    p.create(gmail(), idempotency_key="k")
    p.create(Connector(name="ex", provider="as", source="exa", target=WS, scope={"extra": {"region": "eu"}},
                       credentials={"api_key": Secret("exa_key_123456")}), idempotency_key="k")
    texts = [json.dumps(raw_list(emu)), json.dumps(emu_state(emu)), repr(list(p.list([WS]))),
             "".join(f.read_text() for f in tmp_path.iterdir())]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_import_skips_a_member_connection_it_cannot_name(project):
    """A personal connection made outside carries only Airstore's internal member number: import
    says so and writes nothing for it, instead of a manifest with a member id it would have to guess."""
    emu, path, run = project
    path.write_text(manifest(emu.url, with_alice=False))
    assert run("apply", str(path), "--yes").code == 0
    r = EMU_HTTP.post(f"{emu.url}/api/v1/workspaces/{WS}/connections", headers={"Authorization": f"Bearer {ADMIN}"},
                   json={"integration_type": "slack", "access_token": "xoxb-hand", "member_id": BOB})
    assert r.status_code == 201
    result = run("import", str(path), "--provider", "store")
    assert result.code == 0, result.output
    assert "skipped" in result.output and "internal number" in result.output and "member:" in result.output
    assert not list(path.parent.glob("imported-*.yaml"))


def test_example_in_the_sandbox(tmp_path):
    """examples/airstore through --sandbox: the emulator gets the manifest's member as well."""
    root = Path(__file__).resolve().parent.parent / "examples" / "airstore"
    copy = tmp_path / "airstore"
    copy.mkdir()
    text = (root / "main.yaml").read_text().replace("../../schemas", str(root.parent.parent / "schemas"))
    (copy / "main.yaml").write_text(text)
    result = run_cli("apply", str(copy), "--sandbox")
    assert result.code == 0 and "2 added" in result.stdout, result.output
    result = run_cli("plan", str(copy), "--sandbox", "--detailed-exitcode")
    assert result.code == 0, result.output
