"""`reconcile sync` (and sync_on_apply) as a real process against the platforms' emulators."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import EMU_HTTP, run_cli

KEY = "sync-test-key-77aa"
TOKEN = "ghp_syncTestSecret0042"


def airweave_manifest(names: list[str], *, sync_on_apply: bool = True) -> str:
    out = ["version: 1", "providers:", "  aw:", "    type: airweave", "    url: ${AW_URL}", "    api_key: ${KEY}",
           "connectors:"]
    for name in names:
        out += [f"  {name}:", "    provider: aw", "    source: github", "    target: docs-ab123",
                "    scope:", f"      repo_name: company/{name}", "      branch: main",
                "    schedule:", '      cron: "0 */6 * * *"',
                "    credentials:", "      personal_access_token: ${TOKEN}",
                f"    sync_on_apply: {'true' if sync_on_apply else 'false'}"]
    return "\n".join(out) + "\n"


AIMABLE = """version: 1
providers:
  aim:
    type: aimable
    url: ${AIM_URL}
    api_key: ${KEY}
connectors:
  handbook:
    provider: aim
    source: google-drive
    target: sp1/col1
    scope:
      folder_ids: ["1A2B3C4D"]
    credentials:
      access_token: ${TOKEN}
    sync_on_apply: %s
"""

MIXED = """version: 1
providers:
  capi:
    type: connectors-api
    url: ${CAPI_URL}
    api_key: ${KEY}
  store:
    type: airstore
    url: ${STORE_URL}
    api_key: ${KEY}
connectors:
  documents:
    provider: capi
    source: s3
    target: col_abc123
    scope:
      bucket: my-documents
      region: us-east-1
      prefix: /documents/
    credentials:
      accessKeyId: ${TOKEN}
      secretAccessKey: ${TOKEN}
    sync_on_apply: true
  team-gmail:
    provider: store
    source: gmail
    target: ws_abc123
    credentials:
      access_token: ${TOKEN}
"""


class Project:
    def __init__(self, root: Path, text: str, **urls: str) -> None:
        self.root = root
        self.path = root / "connectors.yaml"
        self.path.write_text(text)
        self.env = {"KEY": KEY, "TOKEN": TOKEN, **urls}
        self.outputs: list[str] = []

    def run(self, *args: str, expect: int | None = 0):
        result = run_cli(*args, env=self.env, cwd=self.root)
        self.outputs.append(result.output)
        if expect is not None:
            assert result.code == expect, result.output
        return result

    def assert_no_secret(self) -> None:
        for text in self.outputs:
            assert TOKEN not in text and KEY not in text


def requests(emu) -> dict[str, int]:
    return EMU_HTTP.get(emu.url + "/_emulator/stats").json()["requests"]


def emu_state(emu) -> dict:
    return EMU_HTTP.get(emu.url + "/_emulator/state").json()


def count(stats: dict[str, int], method: str, suffix: str) -> int:
    return sum(n for k, n in stats.items() if k.startswith(method + " ") and k.endswith(suffix))


def test_airweave_create_syncs_once_then_sync_wait_completes(emulator, tmp_path):
    emu = emulator("airweave", api_key=KEY, targets=["docs-ab123"])
    p = Project(tmp_path, airweave_manifest(["docs-one", "docs-two"]), AW_URL=emu.url)
    p.run("apply", str(p.path), "--yes")
    # the create's sync_immediately started the sync: no separate /run call, one job each
    assert count(requests(emu), "POST", "/run") == 0
    jobs = emu_state(emu)["jobs"]
    assert sorted(len(v) for v in jobs.values()) == [1, 1]

    result = p.run("sync", str(p.path), "--wait", "--timeout", "30s")
    assert "docs-one (aw: airweave): sync started, job " in result.stdout
    assert "Sync: 2 completed, 0 failed, 0 cancelled, 0 skipped." in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[1:2] == ["aw"]]
    assert [(r[0], r[3]) for r in rows] == [("docs-one", "completed"), ("docs-two", "completed")]
    assert "docs-one (aw: airweave): completed" in result.stderr  # plain progress lines in CI

    # a connector declared but not applied yet: a clear error, and no sync started for the others
    runs_before = count(requests(emu), "POST", "/run")
    p.path.write_text(airweave_manifest(["docs-one", "docs-two", "docs-new"]))
    result = p.run("sync", str(p.path), expect=1)
    assert "not created yet: docs-new" in result.stderr and "reconcile apply" in result.stderr
    assert count(requests(emu), "POST", "/run") == runs_before

    p.run("sync", str(p.path), "--only", "docs-two")  # without --wait: started, exit 0
    assert count(requests(emu), "POST", "/run") == runs_before + 1
    result = p.run("sync", str(p.path), "--only", "nope", expect=1)
    assert "no connector named 'nope'" in result.stderr
    p.assert_no_secret()


def test_failing_sync_exits_1_with_the_platforms_error(emulator, tmp_path):
    emu = emulator("airweave", api_key=KEY, targets=["docs-ab123"], sync_fail=True)
    p = Project(tmp_path, airweave_manifest(["docs-one"], sync_on_apply=False), AW_URL=emu.url)
    p.run("apply", str(p.path), "--yes")
    result = p.run("sync", str(p.path), "--wait", expect=1)
    assert "emulated sync failure: source returned 500 while fetching records" in result.output
    assert "docs-one (aw: airweave): sync " in result.stderr and "failed" in result.stderr
    assert "0 completed, 1 failed, 0 cancelled" in result.stdout
    p.assert_no_secret()


def test_progress_of_collected_parsed_indexed_and_platform_without_sync_api(emulator, tmp_path):
    capi = emulator("connectors-api", api_key=KEY, targets=["col_abc123"])
    store = emulator("airstore", api_key=KEY, targets=["ws_abc123"])
    p = Project(tmp_path, MIXED, CAPI_URL=capi.url, STORE_URL=store.url)
    p.run("apply", str(p.path), "--yes")
    # the engine triggered the sync after the create (the platform does not start one itself)
    assert count(requests(capi), "POST", "/sync") == 1

    result = p.run("sync", str(p.path), "--wait")
    assert "team-gmail (store: airstore): skipped: airstore has no sync API" in result.stdout
    assert "collected" in result.stdout and "parsed" in result.stdout and "indexed" in result.stdout
    assert "Sync: 1 completed, 0 failed, 0 cancelled, 1 skipped." in result.stdout
    assert count(requests(capi), "POST", "/sync") == 2


def test_lost_polls_do_not_fail_the_sync(emulator, tmp_path):
    """Every poll answers 429 for a while (beyond the HTTP client's retries): the watch goes on."""
    emu = emulator("aimable", api_key=KEY, targets=["sp1/col1"], sync_duration=1.5, retry_after=0.02)
    p = Project(tmp_path, AIMABLE % "false", AIM_URL=emu.url)
    p.run("apply", str(p.path), "--yes")
    proc = _spawn(p, "sync", str(p.path), "--wait")
    try:
        _wait_for_line(proc.stdout, "sync started")
        emu.config.throttle_rate = 1.0
        time.sleep(0.8)
        emu.config.throttle_rate = 0.0
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "polling failed, retrying" in err
    assert "Sync: 1 completed" in out


def test_aimable_apply_syncs_once_and_ctrl_c_cancels_it(emulator, tmp_path):
    emu = emulator("aimable", api_key=KEY, targets=["sp1/col1"], sync_duration=60)
    p = Project(tmp_path, AIMABLE % "true", AIM_URL=emu.url)
    p.run("apply", str(p.path), "--yes")
    # the engine triggered exactly one sync after the create (Aimable does not start one itself)
    assert count(requests(emu), "POST", "/sync") == 1
    assert len(emu_state(emu)["syncs"]) == 1
    # still running: `sync` takes that one over instead of failing on the platform's 409
    proc = _spawn(p, "sync", str(p.path), "--wait")
    try:
        _wait_for_line(proc.stdout, "sync started")
        time.sleep(0.5)  # polling
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    (job,) = emu_state(emu)["syncs"].values()
    assert job["cancelled_at"]
    assert "cancelled sync" in err
    assert "0 failed, 1 cancelled" in out
    assert "on the platform?" not in err  # no TTY: no question asked


def _spawn(p: Project, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "NO_COLOR"))}
    env.update(p.env, NO_COLOR="1")
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=p.root)


def _wait_for_line(stream, needle: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if needle in line:
            return line
        if not line:
            break
    raise AssertionError(f"{needle!r} never appeared")
