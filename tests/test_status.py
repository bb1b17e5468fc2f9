"""`reconcile status` as a real process against emulators: one table of every declared connector."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from croniter import croniter

from conftest import EMU_HTTP, run_cli

KEY = "status-test-key-8d1"
TOKEN = "ghp_statusSecret0099"
ENV = {"KEY": KEY, "TOKEN": TOKEN}


def airweave(url: str, *, with_new: bool = False) -> str:
    text = f"""version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{KEY}}
connectors:
  docs-github:
    provider: aw
    source: github
    target: docs-ab123
    scope:
      repo_name: company/docs
    schedule:
      cron: "0 3 * * *"
    credentials:
      personal_access_token: ${{TOKEN}}
    sync_on_apply: true
  team-slack:
    provider: aw
    source: slack
    target: docs-ab123
    credentials:
      type: oauth_browser
"""
    if with_new:
        text += """  later:
    provider: aw
    source: slack
    target: docs-ab123
    schedule:
      manual: true
    credentials:
      type: oauth_browser
"""
    return text


def test_status_table_and_json_on_airweave(emulator, tmp_path: Path):
    emu = emulator("airweave", api_key=KEY, targets=["docs-ab123"])
    path = tmp_path / "connectors.yaml"
    path.write_text(airweave(emu.url))
    result = run_cli("apply", str(path), "--yes", env=ENV)
    assert result.code == 0, result.output
    path.write_text(airweave(emu.url, with_new=True))
    auth_urls = [c["auth"]["auth_url"] for c in EMU_HTTP.get(emu.url + "/_emulator/state").json()["connections"].values()
                 if c["auth"].get("auth_url")]
    assert len(auth_urls) == 1

    result = run_cli("status", str(path), env=ENV)
    assert result.code == 0, result.output
    table, notes = result.stdout.split("\n\n", 1)
    header, *lines = table.splitlines()
    assert header.split() == ["CONNECTOR", "PROVIDER", "STATUS", "LAST", "SYNC", "NEXT", "RUN"]
    rows = {line.split()[0]: line for line in lines}
    assert "PENDING_AUTH" in rows["team-slack"] and "never" in rows["team-slack"]
    assert f"team-slack waits for authorization: open {auth_urls[0]}" in notes
    # (was `continuous: true`, which airweave now refuses at validate: the real server ignores it)
    assert "not created" in rows["later"] and "manual" in rows["later"]
    assert "(at 03:00)" in rows["docs-github"]
    assert rows["docs-github"].split()[1:3] == ["aw", "(airweave)"]
    assert rows["docs-github"].split()[3] in ("ACTIVE", "SYNCING")  # the apply's sync may still run
    assert "not created yet (later): run `reconcile apply" in notes

    result = run_cli("status", str(path), "--format", "json", env=ENV)
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format_version"] == 1
    by_name = {c["name"]: c for c in doc["connectors"]}
    assert list(by_name) == ["docs-github", "later", "team-slack"]
    assert by_name["team-slack"]["status"] == "PENDING_AUTH" and by_name["team-slack"]["auth_url"] == auth_urls[0]
    assert by_name["later"]["status"] == "not created" and by_name["later"]["id"] is None
    github = by_name["docs-github"]
    assert github["last_sync"]["status"] in ("queued", "running", "completed")  # the one sync_on_apply started
    expected = croniter("0 3 * * *", datetime.now(timezone.utc)).get_next(datetime)
    assert datetime.fromisoformat(github["next_run"]) == expected
    assert github["schedule"] == "at 03:00"
    assert TOKEN not in result.output and KEY not in result.output


AIMABLE_AND_AIRSTORE = """version: 1
providers:
  aim:
    type: aimable
    url: {aim}
    api_key: ${{KEY}}
  store:
    type: airstore
    url: {store}
    api_key: ${{KEY}}
connectors:
  handbook:
    provider: aim
    source: google-drive
    target: sp1/col1
    scope:
      folder_ids: ["1A2B3C4D"]
    credentials:
      access_token: ${{TOKEN}}
    sync_on_apply: true
  team-gmail:
    provider: store
    source: gmail
    target: ws_abc123
    credentials:
      access_token: ${{TOKEN}}
"""


def test_status_shows_last_sync_result_and_manual_schedules(emulator, tmp_path: Path):
    aim = emulator("aimable", api_key=KEY, targets=["sp1/col1"], sync_duration=0.2, sync_fail=True)
    store = emulator("airstore", api_key=KEY, targets=["ws_abc123"])
    path = tmp_path / "connectors.yaml"
    path.write_text(AIMABLE_AND_AIRSTORE.format(aim=aim.url, store=store.url))
    result = run_cli("apply", str(path), "--yes", env=ENV)
    assert result.code == 0, result.output
    deadline = time.monotonic() + 20
    while True:  # the apply's sync runs on the platform for 0.2 s: wait until it has ended
        result = run_cli("status", str(path), "--format", "json", env=ENV)
        assert result.code == 0, result.output
        by_name = {c["name"]: c for c in json.loads(result.stdout)["connectors"]}
        handbook = by_name["handbook"]
        if handbook["last_sync"]["status"] not in ("queued", "running") or time.monotonic() > deadline:
            break
    assert handbook["last_sync"]["status"] == "failed"  # the apply's sync failed on the platform
    assert "emulated sync failure" in handbook["last_sync"]["error"]
    assert handbook["schedule"] == "manual" and handbook["next_run"] is None
    assert by_name["team-gmail"]["status"] not in ("not created", "unknown")
    assert by_name["team-gmail"]["last_sync"] is None
