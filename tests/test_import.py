"""`reconcile import` against a hand-made Airweave population, over the emulator's HTTP API."""
from __future__ import annotations

import json
import re
import shutil

import yaml

from conftest import EMU_HTTP, run_cli
from reconciler.state.file import FileBackend

COLLECTION = "docs-ab123"
HAND_SECRETS = ("ghp_handmade_secret_1", "ghp_handmade_secret_2", "xoxb-handmade-secret-3")

MANIFEST = """# yaml-language-server: $schema=../schemas/manifest.schema.json
version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{AW_KEY}}
connectors:
  managed-one:
    provider: aw
    source: github
    target: {collection}
    scope: {{repo_name: team/managed}}
    credentials: {{personal_access_token: "${{MANAGED_TOKEN}}"}}
"""

VARIABLES = {
    "IMPORTED_AW_HAND_MADE_ONE_PERSONAL_ACCESS_TOKEN",
    "IMPORTED_AW_DOCS_GITHUB_PERSONAL_ACCESS_TOKEN",
    "IMPORTED_AW_SLACK_ALERTS_ACCESS_TOKEN",
}


def base_env() -> dict[str, str]:
    return {"AW_KEY": "test-key", "MANAGED_TOKEN": "ghp_managed_secret"}


def full_env() -> dict[str, str]:
    return base_env() | {v: f"value-of-{v.lower()}" for v in VARIABLES}


def hand_make(url: str) -> dict[str, str]:
    """Connectors made by hand on the platform (its API, not the reconciler): name -> live id."""
    bodies = [
        {"name": "Hand made one", "short_name": "github", "readable_collection_id": COLLECTION,
         "description": "made in the dashboard", "config": {"repo_name": "team/wiki", "branch": "main"},
         "schedule": {"cron": "0 3 * * *"},
         "authentication": {"credentials": {"personal_access_token": HAND_SECRETS[0]}}},
        {"name": "docs-github", "short_name": "github", "readable_collection_id": COLLECTION,
         "config": {"repo_name": "team/docs"},
         "authentication": {"credentials": {"personal_access_token": HAND_SECRETS[1]}}},
        {"name": "slack-alerts", "short_name": "slack", "readable_collection_id": COLLECTION,
         "authentication": {"access_token": HAND_SECRETS[2]}},
    ]
    ids = {}
    for body in bodies:
        r = EMU_HTTP.post(f"{url}/source-connections", json=body, headers={"x-api-key": "test-key"})
        assert r.status_code == 200, r.text
        ids[body["name"]] = r.json()["id"]
    return ids


def setup(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION])
    path = tmp_path / "manifests"
    path.mkdir()
    (path / "main.yaml").write_text(MANIFEST.format(url=emu.url, collection=COLLECTION))
    r = run_cli("apply", str(path), "--yes", env=base_env())
    assert r.code == 0, r.output
    return emu, path, hand_make(emu.url)


def test_import_writes_valid_manifests_adopts_them_and_the_next_plan_is_empty(tmp_path, emulator):
    emu, path, ids = setup(tmp_path, emulator)
    before = run_cli("plan", str(path), "--format", "json", env=base_env())
    assert len(json.loads(before.stdout)["unmanaged"]) == 3

    r = run_cli("import", str(path), "--provider", "aw", env=base_env())
    assert r.code == 0, r.output
    out = path / "imported-aw.yaml"
    text = out.read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    for live_id in ids.values():
        assert f"# imported from live id {live_id}" in text
    doc = yaml.safe_load(text)
    connectors = doc["connectors"]
    assert sorted(connectors) == ["docs-github", "hand-made-one", "slack-alerts"]
    assert connectors["hand-made-one"] == {
        "provider": "aw", "source": "github", "target": COLLECTION, "description": "made in the dashboard",
        "scope": {"repo_name": "team/wiki", "branch": "main"}, "schedule": {"cron": "0 3 * * *"},
        "credentials": {"personal_access_token": "${IMPORTED_AW_HAND_MADE_ONE_PERSONAL_ACCESS_TOKEN}"},
        "lifecycle": {"ignore_changes": ["name"]},  # "Hand made one" is not a manifest name
    }
    assert connectors["slack-alerts"]["credentials"] == {
        "type": "oauth_token", "access_token": "${IMPORTED_AW_SLACK_ALERTS_ACCESS_TOKEN}"}
    assert "managed-one" not in connectors  # managed already: never imported
    for v in VARIABLES:
        assert v in r.stdout
    for secret in HAND_SECRETS:
        assert secret not in text and secret not in r.output

    state = FileBackend(path / ".reconcile" / "state.json").load()
    assert {n: e.id for n, e in state.entries.items() if n != "managed-one"} == {
        "hand-made-one": ids["Hand made one"], "docs-github": ids["docs-github"],
        "slack-alerts": ids["slack-alerts"]}
    assert all(state.entries[n].fingerprint is None for n in ("hand-made-one", "docs-github", "slack-alerts"))

    plan = run_cli("plan", str(path), "--detailed-exitcode", env=full_env())
    assert plan.code == 0, plan.output
    assert "No changes" in plan.stdout and "unmanaged" not in plan.stdout

    again = run_cli("import", str(path), "--provider", "aw", env=base_env())
    assert again.code == 0 and "Nothing to import" in again.stdout
    assert not (path / "imported-aw-2.yaml").exists()

    # an apply with nothing to change still records the imported connectors' fingerprints (no API
    # call), so that a later rotation of those secrets plans an update
    assert run_cli("apply", str(path), "--yes", env=full_env()).code == 0
    state = FileBackend(path / ".reconcile" / "state.json").load()
    assert all(state.entries[n].fingerprint for n in ("hand-made-one", "docs-github", "slack-alerts"))
    rotated = full_env() | {"IMPORTED_AW_SLACK_ALERTS_ACCESS_TOKEN": "rotated-slack-token"}
    plan = run_cli("plan", str(path), "--detailed-exitcode", env=rotated)
    assert plan.code == 2 and "# aw.slack-alerts will be updated in place" in plan.stdout, plan.output


def test_names_are_stable_across_runs(tmp_path, emulator):
    emu, path, _ = setup(tmp_path, emulator)
    twin = tmp_path / "twin"
    shutil.copytree(path, twin)  # same manifests and state, imported separately
    for p in (path, twin):
        r = run_cli("import", str(p), "--provider", "aw", env=base_env())
        assert r.code == 0, r.output
    strip = lambda t: re.sub(r"on \S+\.$", "", t, flags=re.M)  # the date line  # noqa: E731
    assert strip((path / "imported-aw.yaml").read_text()) == strip((twin / "imported-aw.yaml").read_text())


def test_unknown_provider_and_output_outside_path(tmp_path, emulator):
    emu, path, _ = setup(tmp_path, emulator)
    r = run_cli("import", str(path), "--provider", "nope", env=base_env())
    assert r.code == 1 and "provider 'nope' is not declared" in r.stderr and "aw" in r.stderr
    elsewhere = tmp_path / "elsewhere"
    r = run_cli("import", str(path), "--provider", "aw", "-o", str(elsewhere), env=base_env())
    assert r.code == 0, r.output
    assert (elsewhere / "imported-aw.yaml").exists()
    assert "NOT adopted" in r.stdout
    # the state was left alone: adopting them would plan their deletion
    assert sorted(FileBackend(path / ".reconcile" / "state.json").load().entries) == ["managed-one"]
