"""Airstore adapter: pure projection logic (no network).

Live items are shaped as the real server answers (``beam-cloud/airstore`` 6abcbac2,
``pkg/types/identity.go``): internal integer ``id`` / ``workspace_id`` / ``member_id``, a UUID
``external_id``, no ``extra``, no ``status``.
"""
from __future__ import annotations

import httpx

from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class
from reconciler.state.model import StateEntry

WS = "8a1f0d2e-3b4c-4d5e-8f60-718293a4b5c6"
ALICE = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"
EXT = "0b6d2f9e-7c1a-4e3b-9d5f-2a8c6e4b1d7f"


def adapter(token: str = "admin-token-4242"):
    return provider_class("airstore")(ProviderConfig(name="as", type="airstore", url="http://127.0.0.1:9",
                                                     api_key=Secret(token)))


def item(**over) -> dict:
    base = {"id": 41, "external_id": EXT, "workspace_id": 7, "integration_type": "gmail",
            "created_at": "2026-12-01T10:00:00.000001Z", "updated_at": "2026-12-01T10:00:00.000001Z"}
    return {**base, **over}


def test_capabilities():
    caps = adapter().capabilities
    assert caps.updatable == {"scope", "credentials"}
    assert caps.replace_on == {"source", "target", "member"}
    # extra is never returned: the list is not the whole projection
    assert not caps.list_is_complete and not caps.can_sync and not caps.schedule_forms
    assert caps.default_url == "https://api.airstore.ai"


def test_desired_fields_leave_out_empty_parts_and_fingerprint_extra():
    p = adapter()
    assert p.desired_fields(Connector(name="n", provider="as", source="github", target=WS, member="")) == {
        "source": "github", "target": WS}
    empty = Connector(name="n", provider="as", source="github", target=WS, scope={"scope": "", "extra": {}})
    assert p.desired_fields(empty) == {"source": "github", "target": WS}
    full = p.desired_fields(Connector(name="n", provider="as", source="slack", target=WS, member=ALICE,
                                      scope={"extra": {"team": "T1"}}))
    assert set(full) == {"source", "target", "member", "scope"} and full["member"] == ALICE
    fp = full["scope"]["extra"]
    assert fp.startswith("v1:") and "T1" not in fp
    # keyed: another key, another fingerprint; other values, another fingerprint; same values, same
    assert adapter("other-key").desired_fields(Connector(name="n", provider="as", source="slack", target=WS,
                                                         scope={"extra": {"team": "T1"}}))["scope"]["extra"] != fp
    again = p.desired_fields(Connector(name="renamed", provider="as", source="slack", target=WS,
                                       scope={"extra": {"team": "T1"}}))["scope"]["extra"]
    assert again == fp
    assert p.desired_fields(Connector(name="n", provider="as", source="slack", target=WS,
                                      scope={"extra": {"team": "T2"}}))["scope"]["extra"] != fp


def test_live_takes_workspace_from_the_request_and_never_the_answer():
    p = adapter()
    live = p._live(WS, item(scope="repo"))
    assert live.target == WS and live.fields == {"source": "gmail", "target": WS, "scope": {"scope": "repo"}}
    assert live.key == p.identity(Connector(name="n", provider="as", source="gmail", target=WS))
    assert live.id == EXT and live.version == item()["updated_at"] and live.status is None
    assert not live.complete  # extra unknown: the engine takes the state's record while updated_at holds


def test_unknown_member_number_stays_unmapped():
    live = adapter()._live(WS, item(member_id=12))
    assert live.fields["member"] == "#12" and live.key == f"{WS}/#12/gmail"


def test_member_mapped_from_an_upsert_answer():
    p = adapter()
    sent = Connector(name="alice-gmail", provider="as", source="gmail", target=WS, member=ALICE,
                     scope={"scope": "s", "extra": {"a": "b"}}, credentials={"access_token": Secret("tok-123456")})
    answered = p._live(WS, item(member_id=12, scope="s"), sent=sent)
    assert answered.complete and answered.fields == p.desired_fields(sent)
    # the same number in a later list is that member
    assert p._live(WS, item(member_id=12)).key == p.identity(sent)
    # another workspace's member 12 is somebody else
    assert p._live("other-ws", item(member_id=12)).fields["member"] == "#12"


def test_member_mapped_through_the_state():
    p = adapter()
    p.recall([StateEntry(name="alice-gmail", provider="as", type="airstore", id=EXT, key=f"{WS}/{ALICE}/gmail")])
    other = "5a5a5a5a-0000-4000-8000-000000000001"
    body = {"success": True, "data": [item(member_id=12), item(member_id=12, external_id=other,
                                                                integration_type="slack")]}
    p.http._client = httpx.Client(base_url="http://as.test/",
                                  transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    lives = list(p.list([WS]))
    assert [x.key for x in lives] == [f"{WS}/{ALICE}/gmail", f"{WS}/{ALICE}/slack"]


def test_read_leaves_the_unknown_extra_out():
    p = adapter()
    full = p.read(p._live(WS, item(scope="repo")))
    assert full.complete and full.fields["scope"] == {"scope": "repo"}


def test_import_blocker_only_for_unmapped_members():
    p = adapter()
    assert p.import_blocker(p._live(WS, item())) is None
    assert "internal number 12" in p.import_blocker(p._live(WS, item(member_id=12)))


def test_upsert_sends_a_platform_owned_scope_along():
    """The upsert replaces the scope: one set outside that the manifests never owned is kept."""
    p = adapter()
    c = Connector(name="n", provider="as", source="gmail", target=WS, credentials={"access_token": Secret("t-1")})
    assert p._body(c, keep_scope="https://mail.google.com/")["scope"] == "https://mail.google.com/"
    declared = Connector(name="n", provider="as", source="gmail", target=WS, scope={"scope": "mine"},
                         credentials={"access_token": Secret("t-1")})
    assert p._body(declared, keep_scope="theirs")["scope"] == "mine"


def test_body_carries_every_credential_and_member_id():
    p = adapter()
    c = Connector(name="n", provider="as", source="gmail", target=WS, member=ALICE, scope={"scope": "s"},
                  credentials={"access_token": Secret("tok-123456"), "refresh_token": Secret("r-98765")})
    assert p._body(c) == {"integration_type": "gmail", "member_id": ALICE, "scope": "s",
                          "access_token": "tok-123456", "refresh_token": "r-98765"}
    assert "tok-123456" not in repr(c)


def test_permanent_500s_are_the_stores_refusals():
    p = adapter()
    refusal = httpx.Response(500, json={"success": False,
                                        "error": "save connection: pq: value too long for type character varying(512)"})
    uuid_text = httpx.Response(500, json={"success": False,
                                          "error": 'get member: pq: invalid input syntax for type uuid: "m1"'})
    transient = httpx.Response(500, json={"success": False, "error": "save connection: driver: bad connection"})
    assert p.permanent_error(refusal) and p.permanent_error(uuid_text)
    assert not p.permanent_error(transient) and not p.permanent_error(httpx.Response(502, text="bad gateway"))


def test_status_says_only_what_airstore_can_tell():
    p = adapter()
    assert p.status(p._live(WS, item())).status == "stored"


def test_credential_template_from_the_servers_registry():
    p = adapter()
    assert p.credential_template(p._live(WS, item(integration_type="exa"))) == {"api_key": None}
    assert p.credential_template(p._live(WS, item(integration_type="weather"))) == {"api_key": None}
    assert p.credential_template(p._live(WS, item(integration_type="gmail"))) == {"access_token": None}


def test_schema_lists_the_servers_registry():
    """The manifest schema's examples and the adapter's table are the same list: pkg/types/integration.go."""
    from reconciler.manifest.schema import manifest_schema
    from reconciler.providers.airstore import KNOWN_INTEGRATIONS

    source = manifest_schema()["$defs"]["connector_airstore"]["properties"]["source"]
    assert sorted(source["examples"]) == sorted(KNOWN_INTEGRATIONS) and "posthog" not in source["examples"]
    assert source["maxLength"] == 50 and source["minLength"] == 1
