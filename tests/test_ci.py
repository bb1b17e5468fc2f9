"""CI-facing behaviour through the CLI: a plan comment over GitHub's size limit, and the warning
for a file state that cannot remember anything on an ephemeral runner."""
from __future__ import annotations

import json
import shutil

from conftest import run_cli
from test_targeting import ENV, MANIFEST

GITHUB_LIMIT = 65_536  # characters in an issue or PR comment body
URL = "https://github.com/acme/connectors/actions/runs/42#artifacts"


def big_manifest(url: str, n: int) -> str:
    body = "".join(f"""  repo-{i:04d}:
    provider: aw
    source: github
    target: docs-ab123
    description: "Repository number {i} of the engineering organisation, synced hourly"
    scope: {{repo_name: acme/repository-with-a-long-name-{i:04d}, branch: main}}
    schedule: {{cron: "0 * * * *"}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
""" for i in range(n))
    return f"version: 1\nproviders:\n  aw:\n    type: airweave\n    url: {url}\n    api_key: ${{AW_KEY}}\nconnectors:\n{body}"


def test_a_plan_comment_over_the_limit_is_cut_with_a_link_to_the_full_plan(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(big_manifest(emu.url, 200))
    r = run_cli("plan", str(tmp_path), "--format", "markdown", "--full-plan-url", URL, "-o", str(tmp_path / "p.json"),
                env=ENV)
    assert r.code == 0, r.stderr
    comment = f"<!-- reconcile-plan -->\n{r.stdout}\n<sub>for abcdef1</sub>"  # what the action posts
    assert len(comment) <= GITHUB_LIMIT
    assert f"[the full plan]({URL})" in r.stdout and "Plan truncated" in r.stdout
    assert r.stdout.count("```") % 2 == 0 and r.stdout.count("<details") == r.stdout.count("</details>")
    assert "Plan: 200 to add" in r.stdout  # the summary survives the cut
    assert len(json.loads((tmp_path / "p.json").read_text())["actions"]) == 200  # the artifact is whole
    small = run_cli("plan", str(tmp_path), "--format", "markdown", "--full-plan-url", URL, "--target", "repo-0001",
                    env=ENV)
    assert "Plan truncated" not in small.stdout and URL not in small.stdout


def test_ci_with_a_missing_file_state_and_live_connectors_warns(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(MANIFEST.format(url=emu.url, protect=""))
    assert run_cli("apply", str(tmp_path), "--yes", env=ENV).code == 0
    assert "PostgreSQL" not in run_cli("plan", str(tmp_path), env=ENV | {"CI": "true"}).stdout  # the state exists

    shutil.rmtree(tmp_path / ".reconcile")  # an ephemeral runner: the state is gone with the last one
    warned = run_cli("plan", str(tmp_path), env=ENV | {"CI": "true"})
    assert warned.code == 0, warned.output
    assert "CI=true" in warned.stdout and "backend: postgres" in warned.stdout and "3 to adopt" in warned.stdout
    assert "PostgreSQL" not in run_cli("plan", str(tmp_path), env=ENV).stdout  # on a workstation: no warning
