"""Airstore adapter: pure projection logic (no network)."""
from __future__ import annotations

from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class


def adapter():
    return provider_class("airstore")(ProviderConfig(name="as", type="airstore", url="http://127.0.0.1:9",
                                                     api_key=Secret("admin-token-4242")))


def test_capabilities():
    caps = adapter().capabilities
    assert caps.updatable == {"scope", "credentials"}
    assert caps.replace_on == {"source", "target", "member"}
    assert caps.list_is_complete and not caps.can_sync and not caps.schedule_forms
    assert caps.default_url == "https://api.airstore.ai"


def test_desired_fields_leave_out_empty_parts():
    p = adapter()
    bare = Connector(name="n", provider="as", source="github", target="ws_1", member="")
    assert p.desired_fields(bare) == {"source": "github", "target": "ws_1"}
    empty = Connector(name="n", provider="as", source="github", target="ws_1", scope={"scope": "", "extra": {}})
    assert p.desired_fields(empty) == {"source": "github", "target": "ws_1"}
    full = Connector(name="n", provider="as", source="slack", target="ws_1", member="m1",
                     scope={"extra": {"team": "T1", "n": 3}})
    assert p.desired_fields(full) == {"source": "slack", "target": "ws_1", "member": "m1",
                                      "scope": {"extra": {"team": "T1", "n": "3"}}}


def test_identity_matches_live_key_for_shared_and_member():
    p = adapter()
    shared = Connector(name="n", provider="as", source="gmail", target="ws_1")
    member = Connector(name="n", provider="as", source="gmail", target="ws_1", member="m1")
    assert p.identity(shared) == "ws_1//gmail"
    assert p.identity(member) == "ws_1/m1/gmail"
    live = p._live({"external_id": "conn_1", "workspace_id": "ws_1", "integration_type": "gmail", "scope": "",
                    "member_id": "m1", "updated_at": "t"})
    assert live.key == p.identity(member) and live.fields == p.desired_fields(member)


def test_live_drops_server_annotations_from_extra():
    p = adapter()
    live = p._live({"external_id": "conn_1", "workspace_id": "ws_1", "integration_type": "github", "scope": "repo",
                    "extra": {"granted_scopes": ["repo"], "capabilities": ["read"], "write_enabled": True,
                              "org": "acme"}})
    assert live.fields["scope"] == {"scope": "repo", "extra": {"org": "acme"}}


def test_body_carries_credentials_only_in_the_request():
    p = adapter()
    c = Connector(name="n", provider="as", source="gmail", target="ws_1", member="m1", scope={"scope": "s"},
                  credentials={"access_token": Secret("tok-123456")})
    body = p._body(c)
    assert body == {"integration_type": "gmail", "member_id": "m1", "scope": "s", "access_token": "tok-123456"}
    assert "tok-123456" not in repr(c)
