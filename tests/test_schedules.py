"""Schedules through the CLI: validation with file:line, and plans that say schedule changes in words."""
from __future__ import annotations

from pathlib import Path

from conftest import run_cli

KEY = "sched-test-key-31c"
TOKEN = "sched-token-secret-55"
ENV = {"KEY": KEY, "TOKEN": TOKEN}

BAD = """version: 1
providers:
  aim:
    type: aimable
    url: http://127.0.0.1:9
    api_key: ${KEY}
  aw:
    type: airweave
    url: http://127.0.0.1:9
    api_key: ${KEY}
connectors:
  handbook:
    provider: aim
    source: google-drive
    target: sp1/col1
    scope:
      folder_ids: ["1A2B"]
    schedule:
      cron: "0 3 * * *"
    credentials:
      access_token: ${TOKEN}
  docs:
    provider: aw
    source: github
    target: docs-ab123
    scope:
      repo_name: company/docs
    schedule:
      cron: "61 */6 * * *"
    credentials:
      personal_access_token: ${TOKEN}
"""


def test_validate_names_the_bad_cron_line_and_the_platform_without_scheduler(tmp_path: Path):
    path = tmp_path / "connectors.yaml"
    path.write_text(BAD)
    result = run_cli("validate", str(path), "--no-env")
    assert result.code == 1
    lines = result.stderr.splitlines()
    (cron,) = [line for line in lines if "61 */6" in line]
    assert cron.startswith(f"{path}:29:")  # the line of the cron value
    assert "not a valid cron expression" in cron
    (unsupported,) = [line for line in lines if "scheduler" in line]
    assert unsupported.startswith(f"{path}:19:") and "aimable has no scheduler" in unsupported
    assert "2 errors in the manifests; nothing was contacted" in result.stderr


def airweave(url: str, cron: str) -> str:
    return f"""version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{KEY}}
connectors:
  docs:
    provider: aw
    source: github
    target: docs-ab123
    scope:
      repo_name: company/docs
    schedule:
      cron: "{cron}"
    credentials:
      personal_access_token: ${{TOKEN}}
"""


def nango(url: str, syncs: dict[str, str]) -> str:
    body = "".join(f"      {name}:\n        every: {every}\n" for name, every in syncs.items())
    return f"""version: 1
providers:
  ng:
    type: nango
    url: {url}
    api_key: ${{KEY}}
connectors:
  acme-github:
    provider: ng
    source: github-prod
    syncs:
{body}    credentials:
      type: OAUTH2
      access_token: ${{TOKEN}}
"""


def test_plan_says_cron_changes_in_words(emulator, tmp_path: Path):
    emu = emulator("airweave", api_key=KEY, targets=["docs-ab123"])
    path = tmp_path / "connectors.yaml"
    path.write_text(airweave(emu.url, "0 */6 * * *"))
    assert run_cli("apply", str(path), "--yes", env=ENV).code == 0
    path.write_text(airweave(emu.url, "0 3 * * *"))
    result = run_cli("plan", str(path), "--detailed-exitcode", env=ENV)
    assert result.code == 2, result.output
    (line,) = [x for x in result.stdout.splitlines() if "schedule.cron" in x]
    assert '"0 */6 * * *" -> "0 3 * * *"' in line and "(every 6 hours -> at 03:00)" in line


def test_plan_says_nango_sync_frequency_changes_in_words(emulator, tmp_path: Path):
    emu = emulator("nango", api_key=KEY, targets=["github-prod"])
    path = tmp_path / "connectors.yaml"
    path.write_text(nango(emu.url, {"issues": "2h", "pull-requests": "12h"}))
    result = run_cli("apply", str(path), "--yes", env=ENV)
    assert result.code == 0, result.output
    # issues: a new interval; pull-requests: no longer named, so back to the integration's default
    path.write_text(nango(emu.url, {"issues": "30m"}))
    result = run_cli("plan", str(path), "--detailed-exitcode", env=ENV)
    assert result.code == 2, result.output
    (issues,) = [x for x in result.stdout.splitlines() if "syncs.issues" in x]
    assert "(every 2 hours -> every 30 minutes)" in issues
    (pulls,) = [x for x in result.stdout.splitlines() if "syncs.pull-requests" in x]
    assert "syncs.pull-requests = every 12 hours -> platform default" in pulls  # in words, no raw {"every": ...}
    assert "{" not in pulls
    assert TOKEN not in result.output and KEY not in result.output
