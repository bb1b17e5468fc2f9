"""Airweave emulator conformance: each real-server fact, one test.

Source of every fact unless a test says otherwise: the real Airweave backend at commit 32cfea0c, run
on loopback with PostgreSQL, Redis and Temporal (``shared/providers.md``, "Real-server facts",
Airweave). Config classes: ``backend/airweave/platform/configs/config.py`` in ``airweave-ai/airweave``
at commit dd85f495 (``providers/airweave_configs.py``), plus the two fields the 32cfea0c server had
beyond it (GitHub ``sync_pull_requests``, Google Drive ``exclude_patterns``).

In-process (``httpx.ASGITransport`` over the emulator's ASGI app): the HTTP path is not the point.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone

import httpx
import pytest

from reconciler.emulators import EmulatorConfig
from reconciler.emulators.airweave import SOURCES
from reconciler.emulators.base import build
from reconciler.providers import airweave_configs as configs

COLLECTION = "docs-ab123"
KEY = "conf-key"


class Client:
    """A tiny sync facade over an async ASGI client (the emulator app runs in this process)."""

    def __init__(self, **config) -> None:
        config.setdefault("sync_duration", 5.0)  # jobs stay pending/running through a test
        self.app = build("airweave", EmulatorConfig(api_key=KEY, targets=[COLLECTION, "other-cd456"], **config))
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://airweave",
                                        headers={"x-api-key": KEY})

    def __getattr__(self, method: str):
        async def call(*args, **kwargs):
            return await self.client.request(method.upper(), *args, **kwargs)
        return lambda *a, **k: self.loop.run_until_complete(call(*a, **k))

    def create(self, name: str = "docs-github", **body) -> httpx.Response:
        full = {"name": name, "short_name": "github", "readable_collection_id": COLLECTION,
                "config": {"repo_name": "company/docs"},
                "authentication": {"credentials": {"personal_access_token": "ghp_x"}}, **body}
        return self.post("/source-connections", json=full)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def aw():
    c = Client()
    yield c
    c.close()


def _ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


# -- config through the source's config class --------------------------------------------------
def test_config_is_model_dump_with_defaults_and_unknown_keys_dropped(aw):
    """32cfea0c: config validated by the class, stored and returned as model_dump(); no max_file_size."""
    made = _ok(aw.create(config={"repo_name": "company/docs", "max_file_size": 10}))
    assert made["config"] == {"repo_name": "company/docs", "branch": "", "sync_pull_requests": False}
    assert _ok(aw.get(f"/source-connections/{made['id']}"))["config"] == made["config"]


@pytest.mark.parametrize("source, config, dumped", [
    ("gitlab", {}, {"project_id": "", "branch": ""}),
    ("box", {}, {"folder_id": "0"}),
    ("google_drive", {}, {"include_patterns": [], "exclude_patterns": []}),
    ("gmail", {"after_date": "2024-01-31", "included_labels": "inbox, important"},
     {"after_date": "2024/01/31", "included_labels": ["inbox", "important"], "excluded_labels": ["spam", "trash"],
      "excluded_categories": ["promotions", "social"], "gmail_query": None}),
    ("slack", {"anything": 1}, {}),
])
def test_each_class_fills_its_defaults(aw, source, config, dumped):
    """config.py@dd85f495 (GitLabConfig, BoxConfig, GoogleDriveConfig, GmailConfig's before-validators,
    SlackConfig without fields); exclude_patterns: real server 32cfea0c."""
    made = _ok(aw.create(f"conn-{source}", short_name=source, config=config,
                         authentication={"access_token": "tok"} if "oauth_token" in SOURCES[source].methods
                         else {"credentials": {f: "x" for f in SOURCES[source].required}}))
    assert made["config"] == dumped


def test_invalid_config_is_422_invalid_config_fields(aw):
    """32cfea0c: invalid config -> 422 {"detail": "Invalid config fields: ..."}."""
    for bad in ({}, {"repo_name": "no-slash"}, {"repo_name": "a/b\n"},
                {"repo_name": "a/b", "sync_pull_requests": "maybe"}):
        r = aw.create(config=bad)
        assert r.status_code == 422 and r.json()["detail"].startswith("Invalid config fields: "), (bad, r.text)
    assert "repo_name" in aw.create(config={}).json()["detail"]


def test_the_catalogue_is_the_config_table():
    """Every source the emulator serves has its class in the table (and the reverse)."""
    assert set(SOURCES) == set(configs.SOURCES)


def test_patch_config_replaces_the_whole_config_and_revalidates(aw):
    """32cfea0c: PATCH {"config": {"branch": "main"}} alone -> 422 (repo_name required)."""
    made = _ok(aw.create(config={"repo_name": "company/docs", "branch": "dev", "sync_pull_requests": True}))
    refused = aw.patch(f"/source-connections/{made['id']}", json={"config": {"branch": "main"}})
    assert refused.status_code == 422 and "repo_name" in refused.json()["detail"]
    replaced = _ok(aw.patch(f"/source-connections/{made['id']}", json={"config": {"repo_name": "company/wiki"}}))
    assert replaced["config"] == {"repo_name": "company/wiki", "branch": "", "sync_pull_requests": False}


def test_github_create_checks_repository_and_branch():
    """32cfea0c: create checks repo (and branch) against GitHub: unknown -> 400 "Not found (404): Not Found"."""
    c = Client(github_repos={"company/docs": ["main"], "company/any-branch": []})
    try:
        assert c.create(config={"repo_name": "company/docs", "branch": "main"}).status_code == 200
        assert c.create("any-one", config={"repo_name": "company/any-branch", "branch": "x"}).status_code == 200
        for config in ({"repo_name": "company/ghost"}, {"repo_name": "company/docs", "branch": "nope"}):
            r = c.create("bad-one", config=config)
            assert (r.status_code, r.json()) == (400, {"detail": "Not found (404): Not Found"})
    finally:
        c.close()
    default = Client()  # the default knob: any well-formed repo but the not-found sentinel
    try:
        assert default.create(config={"repo_name": "someone/anything"}).status_code == 200
        assert default.create("gone-one", config={"repo_name": "someone/not-found"}).status_code == 400
    finally:
        default.close()


# -- schedules ---------------------------------------------------------------------------------
def test_create_without_schedule_gets_one_picked_by_the_server(aw):
    """32cfea0c: no schedule -> */5 * * * * for continuous-capable sources, else daily at the creation minute."""
    github = _ok(aw.create())
    assert github["schedule"]["cron"] == "*/5 * * * *" and github["schedule"]["next_run"]
    now = datetime.now(timezone.utc)
    stripe = _ok(aw.create("pay-stripe", short_name="stripe", config={},
                           authentication={"credentials": {"api_key": "sk_x"}}))
    minute, hour, *rest = stripe["schedule"]["cron"].split()
    assert rest == ["*", "*", "*"] and int(hour) == now.hour and abs(int(minute) - now.minute) <= 1


def test_cron_null_at_create_means_no_sync_at_all(aw):
    """32cfea0c: cron null at create -> /run and /jobs 404 "No sync found for this source connection"."""
    made = _ok(aw.create(schedule={"cron": None}, sync_immediately=True))
    assert made["schedule"] is None and made["sync_id"] is None and made["sync"] is None
    for r in (aw.post(f"/source-connections/{made['id']}/run"), aw.get(f"/source-connections/{made['id']}/jobs")):
        assert (r.status_code, r.json()) == (404, {"detail": "No sync found for this source connection"})


def test_continuous_is_ignored(aw):
    """32cfea0c: continuous: true is ignored (schedule: null)."""
    made = _ok(aw.create(schedule={"continuous": True, "cursor_field": "updated_at"}))
    assert made["schedule"] is None


def test_removed_schedule_reads_cron_null_next_run_null(aw):
    """32cfea0c: a removed schedule reads back as an object with cron null and next_run null."""
    made = _ok(aw.create(schedule={"cron": "0 3 * * *"}, sync_immediately=False))
    removed = _ok(aw.patch(f"/source-connections/{made['id']}", json={"schedule": {"cron": None}}))
    assert removed["schedule"]["cron"] is None and removed["schedule"]["next_run"] is None
    assert aw.post(f"/source-connections/{made['id']}/run").status_code == 200  # its sync remains


def test_cron_text_is_not_normalised_and_bad_cron_is_422(aw):
    """32cfea0c: "0  3 * * *" (two spaces) -> 422; a bad cron -> 422 "Invalid CRON expression: ..."."""
    for cron in ("0  3 * * *", "61 * * * *", "every day"):
        r = aw.create(schedule={"cron": cron})
        assert r.status_code == 422 and r.json()["detail"].startswith("Invalid CRON expression"), cron


def test_modified_at_moves_on_name_description_config_only_and_has_no_z(aw):
    """32cfea0c: modified_at moves only when name, description or config change; no Z suffix."""
    made = _ok(aw.create(schedule={"cron": "0 3 * * *"}, sync_immediately=False))
    assert not made["modified_at"].endswith("Z") and not made["created_at"].endswith("Z")
    path = f"/source-connections/{made['id']}"
    after_schedule = _ok(aw.patch(path, json={"schedule": {"cron": "0 4 * * *"}}))
    assert after_schedule["modified_at"] == made["modified_at"] and after_schedule["schedule"]["cron"] == "0 4 * * *"
    seen = {made["modified_at"]}
    for body in ({"name": "docs-renamed"}, {"description": "d"}, {"config": {"repo_name": "company/x"}}):
        moved = _ok(aw.patch(path, json=body))["modified_at"]
        assert moved not in seen, body
        seen.add(moved)


def test_patch_config_with_schedule_removal_is_a_500_and_two_patches_work(aw):
    """32cfea0c: PATCH config + schedule {cron: null} -> 500 MissingGreenlet every time; two PATCHes work."""
    made = _ok(aw.create(schedule={"cron": "0 3 * * *"}, sync_immediately=False))
    path = f"/source-connections/{made['id']}"
    both = {"config": {"repo_name": "company/wiki"}, "schedule": {"cron": None}}
    for _ in range(2):
        assert aw.patch(path, json=both).status_code == 500
    assert _ok(aw.get(path))["config"]["repo_name"] == "company/docs"  # nothing was applied
    assert _ok(aw.patch(path, json={"config": both["config"]}))["config"]["repo_name"] == "company/wiki"
    assert _ok(aw.patch(path, json={"schedule": both["schedule"]}))["schedule"]["cron"] is None


# -- lists ---------------------------------------------------------------------------------------
def test_lists_newest_first_unknown_collection_empty_no_collection_whole_org(aw):
    """32cfea0c: ?collection=unknown -> 200 []; newest first; without collection the whole organisation."""
    for name, target in (("first-one", COLLECTION), ("second-one", "other-cd456"), ("third-one", COLLECTION)):
        _ok(aw.create(name, readable_collection_id=target, sync_immediately=False))
    assert aw.get("/source-connections", params={"collection": "no-such-thing"}).json() == []
    assert [i["name"] for i in aw.get("/source-connections", params={"collection": COLLECTION}).json()] == \
        ["third-one", "first-one"]
    assert [i["name"] for i in aw.get("/source-connections").json()] == ["third-one", "second-one", "first-one"]


# -- jobs ----------------------------------------------------------------------------------------
def test_run_while_pending_is_400_and_cancel_pending_then_again(aw):
    """32cfea0c: /run while pending/running -> 400 "...already pending"; cancel pending -> cancelled; again 400."""
    made = _ok(aw.create(schedule={"cron": "0 3 * * *"}, sync_immediately=False))
    base = f"/source-connections/{made['id']}"
    job = _ok(aw.post(f"{base}/run"))
    again = aw.post(f"{base}/run")
    assert again.status_code == 400 and "already pending" in again.json()["detail"]
    cancelled = _ok(aw.post(f"{base}/jobs/{job['id']}/cancel"))
    assert cancelled["status"] == "cancelled"
    assert aw.post(f"{base}/jobs/{job['id']}/cancel").status_code == 400


# -- errors and shapes ------------------------------------------------------------------------------
def test_request_validation_422_is_errors_list_keyed_by_field(aw):
    """32cfea0c: request validation 422 -> {"errors": [{"body.name": "..."}], ...}, not FastAPI's detail list."""
    r = aw.create("ab")
    assert r.status_code == 422 and "detail" not in r.json()
    assert r.json()["errors"] == [{"body.name": "String should have at least 4 characters"}]


def test_404_texts(aw):
    """32cfea0c: 404 texts "SourceConnection not found", "Collection not found"."""
    missing = aw.get("/source-connections/550e8400-e29b-41d4-a716-446655440000")
    assert (missing.status_code, missing.json()) == (404, {"detail": "SourceConnection not found"})
    assert aw.create(readable_collection_id="nope-12345").json() == {"detail": "Collection not found"}


def test_missing_key_401_wrong_key_403(aw):
    """32cfea0c: missing x-api-key -> 401; a wrong key -> 403."""
    assert aw.get("/source-connections", headers={"x-api-key": "wrong"}).status_code == 403
    bare = httpx.AsyncClient(transport=httpx.ASGITransport(app=aw.app), base_url="http://airweave")
    assert aw.loop.run_until_complete(bare.get("/source-connections")).status_code == 401
    aw.loop.run_until_complete(bare.aclose())


def test_detail_before_first_job_and_its_fields(aw):
    """32cfea0c: before the first job sync: null, entities: null; fields error_category and claim_token exist."""
    made = _ok(aw.create(schedule={"cron": "0 3 * * *"}, sync_immediately=False))
    detail = _ok(aw.get(f"/source-connections/{made['id']}"))
    assert detail["sync"] is None and detail["entities"] is None
    assert "error_category" in detail and "claim_token" in detail


def test_patch_with_only_unknown_keys_is_422(aw):
    """32cfea0c: a PATCH with only unknown keys -> 422 "At least one field must be provided"."""
    made = _ok(aw.create(sync_immediately=False))
    r = aw.patch(f"/source-connections/{made['id']}", json={"short_name": "slack"})
    assert r.status_code == 422 and "At least one field must be provided" in str(r.json())


def test_direct_auth_create_without_authentication_is_400(aw):
    """32cfea0c: a direct-auth create without authentication -> 400 "...does not support this authentication method..."."""
    body = {"name": "docs-github", "short_name": "github", "readable_collection_id": COLLECTION,
            "config": {"repo_name": "company/docs"}}
    r = aw.post("/source-connections", json=body)
    assert r.status_code == 400 and re.search("does not support this authentication method", r.json()["detail"])


# -- each source's @source decorator (airweave-ai/airweave, backend/airweave/platform/sources/) ------
def _oauth_token() -> dict:
    return {"access_token": "tok-oauth", "refresh_token": "tok-refresh"}


def test_gitlab_is_oauth_only_and_not_continuous(aw):
    """airweave-ai/airweave backend/airweave/platform/sources/gitlab.py@468af825: auth_methods
    OAUTH_BROWSER, OAUTH_TOKEN, AUTH_PROVIDER; supports_continuous=False; GitLabAuthConfig (configs/auth.py
    @071750e1) is OAuth2WithRefreshAuthConfig, no personal access token."""
    source = _ok(aw.get("/sources/gitlab"))
    assert source["auth_methods"] == ["oauth_browser", "oauth_token", "auth_provider"]
    assert source["supports_continuous"] is False and source["auth_fields"]["fields"] == []
    token = aw.create("lab-gitlab", short_name="gitlab", config={},
                      authentication={"credentials": {"personal_access_token": "glpat-x"}})
    assert token.status_code == 422 and "does not support authentication method 'direct'" in token.text
    made = _ok(aw.create("lab-gitlab", short_name="gitlab", config={"project_id": "123"},
                         authentication=_oauth_token()))
    assert made["auth"]["method"] == "oauth_token" and made["config"] == {"project_id": "123", "branch": ""}
    # not continuous: the server picks a daily schedule, not every five minutes
    assert made["schedule"]["cron"] != "*/5 * * * *" and made["schedule"]["cron"].endswith(" * * *")
    browser = _ok(aw.create("lab-browser", short_name="gitlab", config={}, authentication=None))
    assert browser["status"] == "pending_auth" and browser["auth"]["auth_url"]


@pytest.mark.parametrize("source, continuous", [
    ("github", True), ("gitlab", False), ("bitbucket", False), ("confluence", False), ("jira", False),
    ("notion", False), ("slack", False), ("google_docs", True), ("google_slides", True), ("stripe", False),
])
def test_the_server_picked_schedule_follows_supports_continuous(aw, source, continuous):
    """supports_continuous in airweave-ai/airweave backend/airweave/platform/sources/<name>.py: github
    @be287d88 True, gitlab@468af825, bitbucket@01b63357, confluence@01b63357, jira@f9a0e20b,
    notion@bdb5a7ac, slack@8bbfe10e, stripe@01b63357 False, google_docs@36bea6e8, google_slides@ff909964
    True; with no schedule at create the 32cfea0c server picks */5 for continuous sources, else daily."""
    info = SOURCES[source]
    assert _ok(aw.get(f"/sources/{source}"))["supports_continuous"] is continuous
    config = {**{f.name: "acme" for f in configs.SOURCES[source].fields if f.required},
              **({"repo_name": "company/docs"} if source == "github" else {}),
              **({"project_keys": ["PROJ"]} if source == "jira" else {})}
    authentication = ({"credentials": {f: "x" * 12 for f in info.required}} if info.direct else _oauth_token())
    made = _ok(aw.create(f"auto-{source.replace('_', '-')}", short_name=source, config=config,
                         authentication=authentication))
    assert (made["schedule"]["cron"] == "*/5 * * * *") is continuous


@pytest.mark.parametrize("source, commit", [("trello", "0a135211"), ("salesforce", "be287d88")])
def test_browser_only_sources_refuse_an_oauth_token(aw, source, commit):
    """airweave-ai/airweave backend/airweave/platform/sources/trello.py@0a135211 (OAUTH_BROWSER,
    AUTH_PROVIDER) and salesforce.py@be287d88 (OAUTH_BROWSER, OAUTH_BYOC): no OAUTH_TOKEN."""
    assert commit in SOURCES[source].origin
    assert "oauth_token" not in _ok(aw.get(f"/sources/{source}"))["auth_methods"]
    r = aw.create(f"only-{source}", short_name=source, config={}, authentication=_oauth_token())
    assert r.status_code == 422 and "does not support authentication method 'oauth_token'" in r.text
    browser = _ok(aw.create(f"browser-{source}", short_name=source, config={}, authentication=None))
    assert browser["status"] == "pending_auth"


def test_bitbucket_direct_credentials_are_an_api_token_email_and_workspace(aw):
    """BitbucketAuthConfig in airweave-ai/airweave backend/airweave/platform/configs/auth.py@071750e1:
    access_token, email, workspace required, repo_slug optional (sources/bitbucket.py@01b63357 reads
    them); the old username/app_password pair is gone."""
    fields = {f["name"]: f["required"] for f in _ok(aw.get("/sources/bitbucket"))["auth_fields"]["fields"]}
    assert fields == {"access_token": True, "email": True, "workspace": True, "repo_slug": False}
    old = aw.create("old-bitbucket", short_name="bitbucket", config={},
                    authentication={"credentials": {"username": "me", "app_password": "pw-123456"}})
    assert old.status_code == 422 and {"access_token", "email", "workspace"} <= set(
        k.rsplit(".", 1)[-1] for e in old.json()["errors"] for k in e)
    made = _ok(aw.create("new-bitbucket", short_name="bitbucket", config={}, authentication={"credentials": {
        "access_token": "atl-token-123", "email": "me@example.com", "workspace": "acme"}}))
    assert made["auth"]["method"] == "direct"


def test_postgresql_also_takes_an_auth_provider(aw):
    """airweave-ai/airweave backend/airweave/platform/sources/postgresql.py@8bbfe10e: auth_methods
    DIRECT, AUTH_PROVIDER; PostgreSQLAuthConfig (configs/auth.py@071750e1) requires host, port,
    database, user, password (schema, tables have defaults)."""
    made = _ok(aw.create("db-provider", short_name="postgresql", config={},
                         authentication={"provider_readable_id": "composio-abc"}))
    assert made["auth"]["method"] == "auth_provider"
    missing = aw.create("db-direct", short_name="postgresql", config={},
                        authentication={"credentials": {"host": "db", "port": 5432, "database": "d", "user": "u"}})
    assert missing.status_code == 422 and "credentials.password" in missing.text and "schema" not in missing.text


def test_freshdesk_takes_an_api_key_and_requires_a_domain(aw):
    """airweave-ai/airweave backend/airweave/platform/sources/freshdesk.py@468af825: DIRECT,
    AUTH_PROVIDER, supports_continuous=False; FreshdeskAuthConfig.api_key (configs/auth.py, the stored
    version that has it); FreshdeskConfig.domain required (configs/config.py@dd85f495)."""
    key = {"credentials": {"api_key": "fd-key-123"}}
    no_domain = aw.create("desk-freshdesk", short_name="freshdesk", config={}, authentication=key)
    assert no_domain.status_code == 422 and no_domain.json()["detail"].startswith("Invalid config fields: domain")
    made = _ok(aw.create("desk-freshdesk", short_name="freshdesk", config={"domain": "acme"}, authentication=key))
    assert made["config"] == {"domain": "acme"} and made["schedule"]["cron"] != "*/5 * * * *"


def test_a_misspelt_direct_credential_is_its_required_field_missing(aw):
    """GitHubAuthConfig.personal_access_token (airweave-ai/airweave backend/airweave/platform/configs/
    auth.py@071750e1); BaseConfig (configs/_base.py@908fb64c) keeps pydantic's default of ignoring
    unknown keys, so the typo is dropped and the required field reported missing (422)."""
    r = aw.create(authentication={"credentials": {"personl_access_token": "ghp_x"}})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"body.authentication.credentials.personal_access_token": "Field required"}]
    assert "ghp_x" not in r.text
