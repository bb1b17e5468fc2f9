"""`reconcile drift`: exit 0 in sync, 2 after an edit made directly on the platform, 1 on error."""
from __future__ import annotations

import json

from conftest import EMU_HTTP, run_cli
from reconciler.state.file import FileBackend

SECRET = "ghp_drift_secret_token"

MANIFEST = """version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{AW_KEY}}
connectors:
  docs-github:
    provider: aw
    source: github
    target: docs-ab123
    description: Product docs
    scope: {{repo_name: company/docs, branch: main}}
    schedule: {{cron: "0 */6 * * *"}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
  wiki-github:
    provider: aw
    source: github
    target: docs-ab123
    scope: {{repo_name: company/wiki}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
"""

ENV = {"AW_KEY": "test-key", "GH_TOKEN": SECRET}


def test_drift_exit_codes_and_exactly_the_drifted_field(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(MANIFEST.format(url=emu.url))
    assert run_cli("apply", str(tmp_path), "--yes", env=ENV).code == 0

    clean = run_cli("drift", str(tmp_path), env=ENV)
    assert clean.code == 0, clean.output
    assert "No changes" in clean.stdout

    live_id = FileBackend(tmp_path / ".reconcile" / "state.json").load().entries["docs-github"].id
    r = EMU_HTTP.patch(f"{emu.url}/source-connections/{live_id}", headers={"x-api-key": "test-key"},
                    json={"config": {"repo_name": "company/docs", "branch": "hotfix"}})
    assert r.status_code == 200, r.text

    drifted = run_cli("drift", str(tmp_path), env=ENV)
    assert drifted.code == 2, drifted.output
    assert 'scope.branch = "hotfix" -> "main"' in drifted.stdout
    assert "wiki-github" not in drifted.stdout.split("Plan:")[0].replace("connectors", "")

    doc = json.loads(run_cli("drift", str(tmp_path), "--format", "json", env=ENV).stdout)
    changed = [a for a in doc["actions"] if a["action"] != "no-op"]
    assert [(a["name"], a["action"]) for a in changed] == [("docs-github", "update")]
    assert [(c["path"], c["before"], c["after"]) for c in changed[0]["changes"]] == [("scope.branch", "hotfix", "main")]

    md = run_cli("drift", str(tmp_path), "--format", "markdown", env=ENV)
    assert md.code == 2 and "docs-github" in md.stdout
    for out in (clean.output, drifted.output, md.output):
        assert SECRET not in out

    assert run_cli("apply", str(tmp_path), "--yes", env=ENV).code == 0
    assert run_cli("drift", str(tmp_path), env=ENV).code == 0  # corrected


def test_drift_on_error_exits_1(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(MANIFEST.format(url=emu.url))
    wrong_key = run_cli("drift", str(tmp_path), env=ENV | {"AW_KEY": "not-the-key"})
    assert wrong_key.code == 1, wrong_key.output
    unset = run_cli("drift", str(tmp_path), env={"AW_KEY": "test-key"})
    assert unset.code == 1 and "GH_TOKEN" in unset.stderr
