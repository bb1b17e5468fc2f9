"""Airweave credentials are checked against their source's auth config class at validate and plan
time: a misspelt, missing or foreign credential field is a manifest error naming file:line and the
fields to write, exit 1, and the platform is never contacted (the 422 at create came too late, after
a plan had promised a create). Through the CLI against the emulator.

The fields are the real classes' (``providers/airweave_auth.py``: GitHubAuthConfig,
FreshdeskAuthConfig, BitbucketAuthConfig; GitLab has only OAuth methods).
"""
from __future__ import annotations

import httpx

from conftest import EMU_HTTP, run_cli

COLLECTION = "creds-ab123"
KEY = "aw-creds-key-4711"
TOKEN = "tok-credential-secret-0815"
ENV = {"AW_KEY": KEY, "AW_TOKEN": TOKEN}


def _manifest(url: str, connectors: dict[str, tuple[str, list[str], list[str]]]) -> str:
    """``{name: (source, scope lines, credential lines)}``."""
    out = ["version: 1", "providers:", "  aw:", "    type: airweave", f"    url: {url}", "    api_key: ${AW_KEY}",
           "connectors:"]
    for name, (source, scope, credentials) in connectors.items():
        out += [f"  {name}:", "    provider: aw", f"    source: {source}", f"    target: {COLLECTION}",
                '    schedule: {cron: "0 3 * * *"}']
        if scope:
            out += ["    scope:"] + [f"      {line}" for line in scope]
        out += ["    credentials:"] + [f"      {line}" for line in credentials]
    return "\n".join(out) + "\n"


def _line(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of the first ``needle`` at or after the line holding ``after``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def _requests(emu) -> dict:
    return EMU_HTTP.get(f"{emu.url}/_emulator/stats", timeout=10).json()["requests"]


def test_a_misspelt_credential_fails_validate_and_plan_before_any_request(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    text = _manifest(emu.url, {"docs-github": ("github", ["repo_name: company/docs"],
                                               ["personl_access_token: ${AW_TOKEN}"])})
    (tmp_path / "main.yaml").write_text(text)
    where = f"main.yaml:{_line(text, 'personl_access_token')}:"
    for command in ("validate", "plan"):
        r = run_cli(command, str(tmp_path), env=ENV)
        assert r.code == 1, (command, r.output)
        assert where in r.output and "did you mean 'personal_access_token'?" in r.output, r.output
        assert "Traceback" not in r.output and TOKEN not in r.output
    assert _requests(emu) == {}  # nothing was contacted


def test_missing_and_unknown_fields_name_the_fields_to_write(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    text = _manifest(emu.url, {
        "desk-freshdesk": ("freshdesk", ["domain: acme"], ["token: ${AW_TOKEN}"]),
        "code-bitbucket": ("bitbucket", [], ["access_token: ${AW_TOKEN}", "workspace: acme"]),
        "repo-github": ("github", ["repo_name: company/docs"], ["type: direct"]),
    })
    (tmp_path / "main.yaml").write_text(text)
    r = run_cli("plan", str(tmp_path), env=ENV)
    assert r.code == 1, r.output
    assert f"main.yaml:{_line(text, 'token: ${AW_TOKEN}')}:7: unknown key 'token'; expected one of: api_key, type" \
        in r.output, r.output
    assert f"main.yaml:{_line(text, '    credentials:', after='code-bitbucket')}:5: missing required key 'email' in credentials" in r.output, r.output
    assert "missing required key 'personal_access_token' in credentials" in r.output
    assert _requests(emu) == {}


def test_gitlab_with_a_token_is_told_it_is_oauth_only_and_oauth_converges(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    token = _manifest(emu.url, {"lab-gitlab": ("gitlab", ["project_id: \"123\""],
                                               ["personal_access_token: ${AW_TOKEN}"])})
    (tmp_path / "main.yaml").write_text(token)
    r = run_cli("validate", str(tmp_path), env=ENV)
    assert r.code == 1 and f"main.yaml:{_line(token, '    credentials:')}:5:" in r.output, r.output
    assert "gitlab takes no direct credentials" in r.output and "type: oauth_token" in r.output
    assert _requests(emu) == {}
    # what the message says to write works: an OAuth token, and a direct-token source beside it
    (tmp_path / "main.yaml").write_text(_manifest(emu.url, {
        "lab-gitlab": ("gitlab", ["project_id: \"123\""], ["type: oauth_token", "access_token: ${AW_TOKEN}"]),
        "desk-freshdesk": ("freshdesk", ["domain: acme"], ["api_key: ${AW_TOKEN}"]),
    }))
    applied = run_cli("apply", str(tmp_path), "--auto-approve", env=ENV)
    assert applied.code == 0, applied.output
    assert run_cli("plan", str(tmp_path), "--detailed-exitcode", env=ENV).code == 0
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        methods = {i["short_name"]: i["auth_method"] for i in c.get("/source-connections").json()}
    assert methods == {"gitlab": "oauth_token", "freshdesk": "direct"}


def test_a_source_whose_auth_fields_are_unsettled_keeps_todays_behaviour(tmp_path):
    # the stored ShopifyAuthConfig versions disagree (access_token; client_id + client_secret): the
    # manifest cannot know which the server takes, so it refuses neither
    for credentials in (["access_token: ${AW_TOKEN}"], ["client_id: ${AW_TOKEN}", "client_secret: ${AW_TOKEN}"]):
        (tmp_path / "main.yaml").write_text(_manifest("https://api.airweave.ai", {
            "shop-shopify": ("shopify", ["shop_domain: acme.myshopify.com"], credentials)}))
        r = run_cli("validate", str(tmp_path), env=ENV)
        assert r.code == 0, r.output


def test_import_writes_credentials_the_schema_accepts_for_every_auth_method(tmp_path, emulator):
    # import checks what it writes against the schema: a template the per-source rules refuse would
    # stop it ("does not validate"); optional auth fields (Bitbucket's repo_slug) are left out
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    made = {
        "pat-github": ("github", {"repo_name": "company/docs"}, {"credentials": {"personal_access_token": "ghp_1"}}),
        "via-provider": ("github", {"repo_name": "company/wiki"}, {"provider_readable_id": "composio-abc"}),
        "lab-gitlab": ("gitlab", {}, {"access_token": "glpat-oauth", "refresh_token": "r"}),
        "code-bitbucket": ("bitbucket", {}, {"credentials": {"access_token": "atl-token-1", "email": "me@example.com",
                                                             "workspace": "acme", "repo_slug": "docs"}}),
    }
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        for name, (source, config, authentication) in made.items():
            r = c.post("/source-connections", json={"name": name, "short_name": source, "config": config,
                                                     "readable_collection_id": COLLECTION,
                                                     "authentication": authentication, "schedule": {"cron": None}})
            assert r.status_code == 200, r.text
    (tmp_path / "main.yaml").write_text(_manifest(emu.url, {}).replace("connectors:\n", "connectors: {}\n"))
    r = run_cli("import", str(tmp_path), "--provider", "aw", env=ENV)
    assert r.code == 0 and "Wrote 4 connectors" in r.output, r.output
    text = (tmp_path / "imported-aw.yaml").read_text()
    assert "personal_access_token:" in text and "type: auth_provider" in text and "provider_readable_id:" in text
    assert "type: oauth_token" in text and all(f"{k}:" in text for k in ("email", "workspace"))
    assert "repo_slug" not in text and "ghp_1" not in text



def test_an_auth_provider_connector_names_its_provider(tmp_path):
    # type: auth_provider sends provider_readable_id (the rest as provider_config); without it the
    # server would refuse the create, so validate says so
    for credentials, ok in ((["type: auth_provider", "provider_readable_id: ${AW_TOKEN}",
                             "account: ${AW_TOKEN}"], True),
                            (["type: auth_provider", "account: ${AW_TOKEN}"], False)):
        text = _manifest("https://api.airweave.ai", {"db-postgres": ("postgresql", [], credentials)})
        (tmp_path / "main.yaml").write_text(text)
        r = run_cli("validate", str(tmp_path), env=ENV)
        assert (r.code == 0) is ok, r.output
        if not ok:
            assert f"main.yaml:{_line(text, '    credentials:')}:5: missing required key 'provider_readable_id'" \
                in r.output, r.output
