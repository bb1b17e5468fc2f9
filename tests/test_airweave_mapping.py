"""Pure mapping logic of the Airweave adapter: projection, schedule and authentication bodies."""
from __future__ import annotations

import httpx
import pytest

from reconciler.errors import ProviderError
from reconciler.model import Connector, ProviderConfig, Schedule, Secret
from reconciler.providers import provider_class
from reconciler.providers.airweave import (
    AirweaveProvider, authentication_body, schedule_body, schedule_projection, sync_job,
)


@pytest.fixture
def provider():
    p = AirweaveProvider(ProviderConfig(name="aw", type="airweave", url="http://127.0.0.1:9", api_key=Secret("k-123456")))
    yield p
    p.close()


def conn(**kw) -> Connector:
    kw.setdefault("name", "docs-github")
    kw.setdefault("provider", "aw")
    kw.setdefault("source", "github")
    kw.setdefault("target", "documentation-ab123")
    return Connector(**kw)


def test_registry_finds_adapter():
    assert provider_class("airweave") is AirweaveProvider


def test_auth_header_uses_api_key(provider):
    assert provider.auth_headers() == {"x-api-key": "k-123456"}


def test_desired_fields_minimal_and_full(provider):
    assert provider.desired_fields(conn()) == {"source": "github", "target": "documentation-ab123"}
    full = conn(description="Docs", scope={"repo_name": "a/b"}, schedule=Schedule(cron="0  */6 * * *"))
    assert provider.desired_fields(full) == {
        "source": "github", "target": "documentation-ab123", "description": "Docs",
        "scope": {"repo_name": "a/b"}, "schedule": {"cron": "0 */6 * * *"},
    }


def test_manual_schedule_projects_as_declared_unset(provider):
    # None, not absent: the manifest owns the schedule (field ownership), and None equals no live schedule
    assert provider.desired_fields(conn(schedule=Schedule(manual=True)))["schedule"] is None
    assert "schedule" not in provider.desired_fields(conn())
    assert schedule_projection(None) is None
    assert schedule_projection({"cron": None, "continuous": False, "next_run": None}) is None


def test_schedule_projection_matches_schedule_as_dict():
    assert schedule_projection({"cron": "0 3 * * *", "continuous": False, "next_run": "x"}) == \
        Schedule(cron="0 3 * * *").as_dict()
    assert schedule_projection({"cron": None, "continuous": True, "cursor_field": "updated_at"}) == \
        Schedule(continuous=True, cursor_field="updated_at").as_dict()
    assert schedule_projection({"continuous": True, "cursor_field": None}) == Schedule(continuous=True).as_dict()


def test_schedule_body_forms():
    # {"cron": null} exactly: without a schedule the real server picks one (backend 32cfea0c), and
    # continuous is refused instead of sent (the server ignores it)
    assert schedule_body(Schedule(manual=True)) == {"cron": None}
    assert schedule_body(None) == {"cron": None}
    assert schedule_body(Schedule(cron="0  3 * * *")) == {"cron": "0 3 * * *"}
    with pytest.raises(ProviderError, match="continuous"):
        schedule_body(Schedule(continuous=True, cursor_field="ts"))
    with pytest.raises(ProviderError, match="every"):
        schedule_body(Schedule(every=3600))


def test_scope_is_normalised_as_the_class_stores_it_and_defaults_are_known(provider):
    from reconciler.providers.airweave import AirweaveProvider

    declared = conn(scope={"repo_name": "a/b", "branch": ""})
    assert provider.desired_fields(declared)["scope"] == {"repo_name": "a/b", "branch": ""}
    gmail = conn(source="gmail", scope={"after_date": "2024-01-31", "included_labels": "inbox, sent"})
    assert provider.desired_fields(gmail)["scope"] == {"after_date": "2024/01/31", "included_labels": ["inbox", "sent"]}
    assert provider.scope_defaults("github") == {"branch": "", "sync_pull_requests": False}
    assert provider.scope_defaults("box") == {"folder_id": "0"} and provider.scope_defaults("slack") == {}
    assert isinstance(provider, AirweaveProvider)


def test_error_message_shapes(provider):
    import httpx

    def msg(status, body):
        return provider.error_message(httpx.Response(status, json=body))

    assert msg(422, {"errors": [{"body.name": "String should have at least 4 characters"}], "message": "x"}) == \
        "name: String should have at least 4 characters"
    assert msg(401, {"detail": "Not authenticated"}) == msg(403, {"detail": "Invalid API key"})
    assert "API key rejected" in msg(403, {"detail": "Invalid API key"})


def test_authentication_variants():
    direct = conn(credentials={"personal_access_token": Secret("ghp_abcdef")})
    assert authentication_body(direct) == {"credentials": {"personal_access_token": "ghp_abcdef"}}
    token = conn(credentials={"type": Secret("oauth_token"), "access_token": Secret("at-1234"),
                              "refresh_token": Secret("rt-1234")})
    assert authentication_body(token) == {"access_token": "at-1234", "refresh_token": "rt-1234"}
    assert authentication_body(conn(credentials={"type": Secret("oauth_browser")})) == {}
    provider_auth = conn(credentials={"type": Secret("auth_provider"), "provider_readable_id": Secret("composio-1"),
                                      "auth_config_id": Secret("cfg-1234")})
    assert authentication_body(provider_auth) == {"provider_readable_id": "composio-1",
                                                  "provider_config": {"auth_config_id": "cfg-1234"}}
    assert authentication_body(conn()) is None
    with pytest.raises(ProviderError, match="credentials.type"):
        authentication_body(conn(credentials={"type": Secret("magic-link")}))


def test_sync_job_normalises_status_and_progress():
    job = sync_job({"id": "j1", "status": "pending", "entities_inserted": 3, "entities_updated": 1})
    assert (job.status, job.done) == ("queued", False)
    assert job.progress == {"inserted": 3, "updated": 1, "deleted": 0, "failed": 0}
    assert sync_job({"id": "j", "status": "cancelling"}).status == "running"
    assert sync_job({"id": "j", "status": "failed", "error": "boom"}).error == "boom"


def test_error_message_flattens_validation_details(provider):
    response = httpx.Response(422, json={"detail": [
        {"loc": ["body", "name"], "msg": "String should have at least 4 characters", "type": "string_too_short"},
        {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 1000", "type": "less_than_equal"},
    ]})
    assert provider.error_message(response) == ("name: String should have at least 4 characters; "
                                                 "query.limit: Input should be less than or equal to 1000")
    assert provider.error_message(httpx.Response(404, json={"detail": "Collection 'x' not found"})) == \
        "Collection 'x' not found"


def test_manifest_schema_scope_rules_are_the_config_table():
    """The schema's per-source Airweave scope keys are generated from ``airweave_configs`` (the real
    classes, airweave-ai/airweave backend/airweave/platform/configs/config.py@dd85f495 + server
    32cfea0c): regenerate with ``python -m reconciler.providers.airweave_configs --write-schema``."""
    from reconciler.manifest.schema import manifest_schema
    from reconciler.providers import airweave_configs as configs

    schema = manifest_schema()
    assert configs.apply_to_schema(schema) == schema
    node = schema["$defs"]["connector_airweave"]
    rules = {i["if"]["properties"]["source"]["const"]: i["then"] for i in node["allOf"]
             if "const" in ((i.get("if") or {}).get("properties") or {}).get("source", {})}
    assert sorted(rules) == sorted(configs.SOURCES) == node["properties"]["source"]["enum"]
    github = rules["github"]["properties"]["scope"]
    assert set(github["properties"]) == {"repo_name", "branch", "sync_pull_requests"}
    assert github["additionalProperties"] is False and github["required"] == ["repo_name"]
    assert "minLength" not in github["properties"]["branch"]  # branch: "" is the class default
