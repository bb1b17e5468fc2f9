"""Every Airweave source of the catalogue through the CLI: declared with only its required scope it
converges (the server's model_dump() defaults never show as changes), a removed optional key is
reset, a schedule changed behind the tool's back is drift, and import sees the whole organisation.

One emulator and one apply for the whole catalogue (module fixture), so it stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import run_cli
from reconciler.emulators import EmulatorConfig, RunningEmulator
from reconciler.emulators.airweave import SOURCES as CATALOGUE
from reconciler.providers import airweave_configs as configs

COLLECTION = "catalogue-ab123"
KEY = "aw-catalogue-key"
TOKEN = "tok_catalogue_secret_4711"
ENV = {"AW_KEY": KEY, "AW_TOKEN": TOKEN}

# the least each source's config class accepts (its required fields)
REQUIRED = {"github": {"repo_name": "company/docs"}, "jira": {"project_keys": ["PROJ"]},
            "shopify": {"shop_domain": "shop.myshopify.com"}, "zendesk": {"subdomain": "acme"},
            "freshdesk": {"domain": "acme"}}


def _yaml(value) -> str:
    return json.dumps(value)  # JSON is YAML


def connector_yaml(name: str, source: str, scope: dict, *, schedule: str | None = "cron: \"0 3 * * *\"") -> list[str]:
    info = CATALOGUE[source]
    lines = [f"  {name}:", "    provider: aw", f"    source: {source}", f"    target: {COLLECTION}"]
    if scope:
        lines += ["    scope:"] + [f"      {k}: {_yaml(v)}" for k, v in scope.items()]
    if schedule:
        lines += [f"    schedule: {{{schedule}}}"]
    lines += ["    credentials:"]
    if "oauth_token" in info.methods:
        lines += ["      type: oauth_token", "      access_token: ${AW_TOKEN}"]
    elif info.direct:
        lines += [f"      {f}: ${{AW_TOKEN}}" for f in info.required]
    else:  # browser flow only (Trello, Salesforce): the connection waits for a person
        lines += ["      type: oauth_browser"]
    return lines


def manifest(url: str, connectors: list[list[str]]) -> str:
    head = ["version: 1", "providers:", "  aw:", "    type: airweave", f"    url: {url}", "    api_key: ${AW_KEY}",
            "connectors:"]
    return "\n".join(head + [line for c in connectors for line in c]) + "\n"


def name_of(source: str) -> str:
    return f"all-{source.replace('_', '-')}"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    emu = RunningEmulator("airweave", EmulatorConfig(api_key=KEY, targets=[COLLECTION], sync_duration=0.3)).start()
    root = tmp_path_factory.mktemp("catalogue")
    (root / "main.yaml").write_text(manifest(emu.url, [connector_yaml(name_of(s), s, REQUIRED.get(s, {}))
                                                       for s in sorted(CATALOGUE)]))
    applied = run_cli("apply", str(root), "--auto-approve", env=ENV)
    planned = run_cli("plan", str(root), "--detailed-exitcode", env=ENV)
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        live = {i["name"]: c.get(f"/source-connections/{i['id']}").json()
                for i in c.get("/source-connections", params={"collection": COLLECTION, "limit": 1000}).json()}
    yield emu, root, applied, planned, live
    emu.stop()


def test_required_scope_only_converges_for_the_whole_catalogue(catalogue):
    _, _, applied, planned, live = catalogue
    assert applied.code == 0, applied.output
    assert planned.code == 0, planned.output  # --detailed-exitcode: 0 means no changes
    assert TOKEN not in applied.output + planned.output


@pytest.mark.parametrize("source", sorted(CATALOGUE))
def test_each_source_stores_its_class_defaults(catalogue, source):
    _, _, applied, _, live = catalogue
    stored = live[name_of(source)]["config"]
    assert stored == {**configs.defaults(source), **REQUIRED.get(source, {})}
    assert live[name_of(source)]["schedule"]["cron"] == "0 3 * * *"


# one source per kind of optional field (string, list, bool): the reset of a removed key
OPTIONAL = [("github", "branch", "release"), ("google_drive", "include_patterns", ["docs/*"]),
            ("zendesk", "exclude_closed_tickets", True), ("box", "folder_id", "1234")]


def test_removing_a_declared_optional_key_resets_it(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    with_keys = [connector_yaml(name_of(s), s, {**REQUIRED.get(s, {}), key: value}) for s, key, value in OPTIONAL]
    (tmp_path / "main.yaml").write_text(manifest(emu.url, with_keys))
    assert run_cli("apply", str(tmp_path), "--auto-approve", env=ENV).code == 0
    without = [connector_yaml(name_of(s), s, REQUIRED.get(s, {})) for s, _, _ in OPTIONAL]
    (tmp_path / "main.yaml").write_text(manifest(emu.url, without))
    plan = run_cli("plan", str(tmp_path), "--detailed-exitcode", env=ENV)
    assert plan.code == 2, plan.output
    for source, key, _ in OPTIONAL:
        # "scope.branch = ..." or, when nothing else is left in the scope, "scope = {...} -> ..."
        assert f"scope.{key} =" in plan.output or f'"{key}"' in plan.output, plan.output
    assert run_cli("apply", str(tmp_path), "--auto-approve", env=ENV).code == 0
    again = run_cli("plan", str(tmp_path), "--detailed-exitcode", env=ENV)
    assert again.code == 0, again.output
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        for item in c.get("/source-connections").json():
            source = item["short_name"]
            config = c.get(f"/source-connections/{item['id']}").json()["config"]
            assert config == {**configs.defaults(source), **REQUIRED.get(source, {})}  # the default is back


def test_schedule_changed_out_of_band_is_drift(tmp_path, emulator):
    # modified_at does not move on a schedule change (real server 32cfea0c): a plan that trusted it
    # would never see this
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    (tmp_path / "main.yaml").write_text(manifest(emu.url, [
        connector_yaml("sched-github", "github", REQUIRED["github"]),
        connector_yaml("manual-slack", "slack", {}, schedule="manual: true"),
        connector_yaml("free-notion", "notion", {}, schedule=None)]))
    assert run_cli("apply", str(tmp_path), "--auto-approve", env=ENV).code == 0
    assert run_cli("drift", str(tmp_path), env=ENV).code == 0
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        items = {i["name"]: i for i in c.get("/source-connections").json()}
        before = items["sched-github"]["modified_at"]
        changed = c.patch(f"/source-connections/{items['sched-github']['id']}", json={"schedule": {"cron": "0 9 * * *"}})
        assert changed.json()["modified_at"] == before
        # no schedule at create means none: the server did not pick one
        assert c.get(f"/source-connections/{items['free-notion']['id']}").json()["schedule"] is None
    drift = run_cli("drift", str(tmp_path), env=ENV)
    assert drift.code == 2 and "sched-github" in drift.output and "schedule" in drift.output, drift.output
    assert run_cli("apply", str(tmp_path), "--auto-approve", env=ENV).code == 0
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        manual = c.get(f"/source-connections/{items['manual-slack']['id']}").json()
        assert manual["schedule"] is None and manual["sync_id"] is None
        # a manual connector declares its schedule: someone adding one is drift too
        c.patch(f"/source-connections/{items['manual-slack']['id']}", json={"schedule": {"cron": "0 1 * * *"}})
    drift = run_cli("drift", str(tmp_path), env=ENV)
    assert drift.code == 2 and "manual-slack" in drift.output, drift.output
    assert "sched-github" not in drift.output


def test_sync_status_and_sync_on_apply_say_a_manual_connector_has_no_sync(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    lines = connector_yaml("manual-github", "github", REQUIRED["github"], schedule="manual: true")
    lines.append("    sync_on_apply: true")
    (tmp_path / "main.yaml").write_text(manifest(emu.url, [lines]))
    applied = run_cli("apply", str(tmp_path), "--auto-approve", env=ENV)
    assert applied.code == 0 and "no sync started" in applied.output and "has no sync" in applied.output, \
        applied.output
    synced = run_cli("sync", str(tmp_path), env=ENV)
    assert synced.code == 0 and "has no sync" in synced.output and "Traceback" not in synced.output, synced.output
    status = run_cli("status", str(tmp_path), env=ENV)
    assert status.code == 0 and "no sync" in status.output, status.output


def test_import_lists_the_whole_organisation_and_reports_name_collisions(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION, "elsewhere-xy789"], api_key=KEY)
    (tmp_path / "main.yaml").write_text(manifest(emu.url, [connector_yaml("docs-github", "github",
                                                                          REQUIRED["github"])]))
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        for name, collection, branch in (("docs-github", "elsewhere-xy789", ""), ("team-github", "elsewhere-xy789",
                                                                                    "dev")):
            assert c.post("/source-connections", json={
                "name": name, "short_name": "github", "readable_collection_id": collection,
                "config": {"repo_name": "company/other", "branch": branch}, "schedule": {"cron": None},
                "authentication": {"credentials": {"personal_access_token": "x"}}}).status_code == 200
    unknown = run_cli("import", str(tmp_path), "--provider", "aw", "--target", "no-such-collection", env=ENV)
    assert unknown.code == 1 and "no-such-collection" in unknown.output and "does not exist" in unknown.output
    imported = run_cli("import", str(tmp_path), "--provider", "aw", env=ENV)
    assert imported.code == 0, imported.output
    assert "Wrote 2 connectors" in imported.output
    assert "has the name of declared connector 'docs-github'" in imported.output
    text = (tmp_path / "imported-aw.yaml").read_text()
    assert "team-github" in text and "branch: dev" in text
    assert "sync_pull_requests" not in text and 'branch: ""' not in text  # defaults left out
    # the declared docs-github is still to be created in its own collection, not matched elsewhere
    plan = run_cli("plan", str(tmp_path), env={**ENV, "IMPORTED_AW_DOCS_GITHUB_2_PERSONAL_ACCESS_TOKEN": "ghp_import_one",
                                               "IMPORTED_AW_TEAM_GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_import_two"})
    assert "docs-github" in plan.output and "will be created" in plan.output, plan.output


def test_out_of_band_value_on_an_undeclared_field_is_the_platforms(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=KEY)
    (tmp_path / "main.yaml").write_text(manifest(emu.url, [connector_yaml("docs-github", "github", REQUIRED["github"])]))
    assert run_cli("apply", str(tmp_path), "--auto-approve", env=ENV).code == 0
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        item = c.get("/source-connections").json()[0]
        # set in Airweave's UI: the whole config travels (a PATCH replaces it)
        assert c.patch(f"/source-connections/{item['id']}", json={"config": {
            "repo_name": "company/docs", "branch": "dev", "sync_pull_requests": True}}).status_code == 200
    plan = run_cli("plan", str(tmp_path), "--detailed-exitcode", env=ENV)
    assert plan.code == 0, plan.output
    shown = run_cli("state", "show", str(tmp_path), "docs-github", env=ENV)
    platform_owned = shown.output.split("platform_owned:", 1)[-1]
    assert shown.code == 0 and "scope.branch" in platform_owned and "scope.sync_pull_requests" in platform_owned
    # a change the manifest does own still writes the whole config, keeping the platform's values
    (tmp_path / "main.yaml").write_text(manifest(emu.url, [connector_yaml(
        "docs-github", "github", {"repo_name": "company/wiki"})]))
    assert run_cli("apply", str(tmp_path), "--auto-approve", env=ENV).code == 0
    with httpx.Client(base_url=emu.url, headers={"x-api-key": KEY}) as c:
        config = c.get(f"/source-connections/{item['id']}").json()["config"]
    assert config == {"repo_name": "company/wiki", "branch": "dev", "sync_pull_requests": True}
