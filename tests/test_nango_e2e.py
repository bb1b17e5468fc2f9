"""Nango through the CLI, against an emulator as strict as the real server (v0.71.4): syncs made in
the background after a create, 400 unknown_connection for a DELETE of what is gone, the rate limit,
tags and metadata others own, and what `sync` and `status` say about syncs that never ran."""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from reconciler.emulators import EmulatorConfig

from conftest import EMU_HTTP, run_cli
from reconciler.state.file import FileBackend

KEY = "nango-e2e-key-5b2c"
TOKEN = "nango-e2e-token-9f1d"
ENV = {"KEY": KEY, "TOKEN": TOKEN}
TARGETS = ["github-prod", "slack-main", "zoom-prod"]


def manifest(url: str, connectors: dict[str, dict]) -> str:
    """``connectors``: name -> {"source": ..., "syncs": {sync: every}, "scope": {...}}."""
    out = ["version: 1", "providers:", "  ng:", "    type: nango", f"    url: {url}", "    api_key: ${KEY}",
           "connectors:" if connectors else "connectors: {}"]
    for name, c in connectors.items():
        out += [f"  {name}:", "    provider: ng", f"    source: {c.get('source', 'github-prod')}"]
        if c.get("scope"):
            out += ["    scope:", *(f"      {k}: {v}" for k, v in c["scope"].items())]
        if c.get("syncs"):
            out += ["    syncs:", *(f"      {s}:\n        every: {e}" for s, e in c["syncs"].items())]
        out += ["    credentials:", "      type: OAUTH2", "      access_token: ${TOKEN}"]
        if c.get("sync_on_apply"):
            out.append("    sync_on_apply: true")
    return "\n".join(out) + "\n"


class Project:
    def __init__(self, tmp: Path, emu) -> None:
        self.emu = emu
        self.path = tmp / "connectors.yaml"
        self.outputs: list[str] = []

    def write(self, connectors: dict[str, dict]) -> None:
        self.path.write_text(manifest(self.emu.url, connectors))

    def run(self, *args: str, expect: int | None = 0):
        result = run_cli(*args, env=ENV)
        self.outputs.append(result.output)
        if expect is not None:
            assert result.code == expect, result.output
        return result

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.emu.url, headers={"Authorization": f"Bearer {KEY}"})

    def connections(self) -> dict[str, dict]:
        with self.api() as c:
            while (r := c.get("/connections", params={"limit": 2000})).status_code == 429:
                time.sleep(0.2)  # the test shares the account's rate-limit window with the tool
            return {f"{x['provider_config_key']}/{x['connection_id']}": x for x in r.json()["connections"]}

    def requests(self, method_path: str) -> int:
        return EMU_HTTP.get(self.emu.url + "/_emulator/stats").json()["requests"].get(method_path, 0)

    def assert_no_secret(self) -> None:
        for text in self.outputs:
            assert TOKEN not in text and KEY not in text


def nango(emulator, **config):
    config.setdefault("sync_creation_delay", 0.5)
    return emulator("nango", api_key=KEY, targets=TARGETS, **config)


def test_eight_creates_with_syncs_at_parallelism_8_converge(emulator, tmp_path):
    """issue 12: 7 of 8 creates failed with 400 unknown_sync at the default parallelism, because the
    real server makes a new connection's syncs only after the create has answered (here after the
    emulator's default delay, about a second, as measured on the real one)."""
    p = Project(tmp_path, nango(emulator, sync_creation_delay=EmulatorConfig().sync_creation_delay))
    # issues at 2 h is an override; pull-requests at 6 h is its default: no PUT for that one
    p.write({f"repo-{i}": {"syncs": {"issues": "2h", "pull-requests": "6h"}} for i in range(8)})
    result = p.run("apply", str(p.path), "--yes", "--parallelism", "8")
    assert "8 added" in result.stdout
    assert p.requests("PUT /sync/update-connection-frequency") == 8
    with p.api() as c:
        freqs = c.get("/sync/status", params={"provider_config_key": "github-prod", "syncs": "*"}).json()["syncs"]
    assert sorted((s["connection_id"], s["name"], s["frequency"]) for s in freqs) == sorted(
        [(f"repo-{i}", "issues", "every 2 hours") for i in range(8)]
        + [(f"repo-{i}", "pull-requests", "every 6 hours") for i in range(8)])
    p.run("plan", str(p.path), "--detailed-exitcode")
    p.assert_no_secret()


def _seed_dropping_only_the_first_write() -> int:
    """A seed whose first drop roll (at drop_rate 0.5) drops and whose second does not: the DELETE
    commits and loses its answer, the retry gets an answer."""
    return next(s for s in range(1000) if (r := random.Random(s)).random() < 0.5 <= r.random())


def test_delete_whose_answer_was_lost_still_succeeds(emulator, tmp_path):
    """Real server v0.71.4: the retried DELETE of a connection already deleted is 400 unknown_connection."""
    emu = nango(emulator, seed=_seed_dropping_only_the_first_write())
    p = Project(tmp_path, emu)
    p.write({"doomed": {}, "kept": {}})
    p.run("apply", str(p.path), "--yes")
    p.write({"kept": {}})
    emu.config.drop_rate = 0.5
    result = p.run("apply", str(p.path), "--yes")
    emu.config.drop_rate = 0.0
    assert "1 destroyed" in result.stdout
    assert EMU_HTTP.get(emu.url + "/_emulator/stats").json()["faults"].get("drop") == 1
    assert p.requests("DELETE /connections/doomed") == 2  # the lost answer, then 400 unknown_connection
    assert sorted(p.connections()) == ["github-prod/kept"]
    p.run("plan", str(p.path), "--detailed-exitcode")


def test_rate_limit_is_paced_through(emulator, tmp_path):
    """Real server v0.71.4: 200 requests a minute per account, then 429 + Retry-After (floored to whole
    seconds, so often "0"). Here 12 per 0.6 s window: an apply of 10 connectors meets it."""
    emu = nango(emulator, rate_limit=12, rate_limit_window=0.6, sync_creation_delay=0.05)
    p = Project(tmp_path, emu)
    p.write({f"c{i}": {"syncs": {"issues": "2h"}} for i in range(10)})
    result = p.run("apply", str(p.path), "--yes", "--parallelism", "8")
    assert "10 added" in result.stdout
    assert EMU_HTTP.get(emu.url + "/_emulator/throttled").json()["throttled"] > 0  # it did meet the limit
    assert len(p.connections()) == 10
    p.run("plan", str(p.path), "--detailed-exitcode")


def test_plan_refuses_a_sync_the_integration_does_not_have(emulator, tmp_path):
    p = Project(tmp_path, nango(emulator))
    p.write({"acme": {"syncs": {"issues": "2h", "comments": "1h"}}})
    result = p.run("plan", str(p.path), expect=1)
    assert "connectors.yaml:" in result.stderr and "'acme'" in result.stderr
    assert "no sync named 'comments'" in result.stderr and "issues, pull-requests" in result.stderr
    assert "Traceback" not in result.output
    assert p.requests("POST /connections") == 0


def test_replace_keeps_foreign_tags_and_updates_keep_platform_metadata(emulator, tmp_path):
    p = Project(tmp_path, nango(emulator))
    p.write({"acme": {"scope": {"team": "data"}}})
    p.run("apply", str(p.path), "--yes")
    with p.api() as c:  # someone tags it and adds a metadata key in Nango's UI
        c.patch("/connections/acme", params={"provider_config_key": "github-prod"},
                json={"tags": {"Cost-Center": "42", "managed-by": "connector-reconciler"}}).raise_for_status()
        c.patch("/connections/metadata", json={"connection_id": "acme", "provider_config_key": "github-prod",
                                               "metadata": {"region": "eu"}}).raise_for_status()
    p.run("plan", str(p.path), "--detailed-exitcode")  # neither is a change: the manifest owns neither
    p.write({"acme": {"scope": {"team": "platform"}}})
    p.run("apply", str(p.path), "--yes")
    assert p.connections()["github-prod/acme"]["metadata"] == {"team": "platform", "region": "eu"}
    p.write({"acme": {"source": "slack-main", "scope": {"team": "platform"}}})  # source: a replace
    result = p.run("apply", str(p.path), "--yes")
    assert "1 replaced" in result.stdout
    conns = p.connections()
    assert sorted(conns) == ["slack-main/acme"]
    # the marker names the state's lineage too (tests/test_import_forgotten.py), which the person's PATCH had dropped
    lineage = FileBackend(p.path.parent / ".reconcile" / "state.json").load().lineage
    assert conns["slack-main/acme"]["tags"] == {"cost-center": "42", "managed-by": "connector-reconciler",
                                                "managed-by-state": lineage}
    p.run("plan", str(p.path), "--detailed-exitcode")


def test_sync_and_status_on_syncs_that_never_ran_or_do_not_exist(emulator, tmp_path):
    p = Project(tmp_path, nango(emulator, sync_creation_delay=0.0))
    p.write({"meetings": {"source": "zoom-prod"}, "repo": {}})
    p.run("apply", str(p.path), "--yes")
    status = p.run("status", str(p.path))
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:] if line.strip()}
    assert "never run" in rows["repo"] and "(platform default)" in rows["repo"]
    assert "(manual)" not in status.stdout

    result = p.run("sync", str(p.path), "--only", "meetings", "--wait", "--timeout", "10m")
    assert "meetings (ng: nango): skipped: Nango lists no syncs for connection 'meetings'" in result.stdout
    assert "Sync: 0 completed, 0 failed, 0 cancelled, 1 skipped." in result.stdout
    assert p.requests("POST /sync/trigger") == 0


def test_sync_timeout_is_timed_out_not_failed(emulator, tmp_path):
    p = Project(tmp_path, nango(emulator, sync_creation_delay=0.0, sync_duration=30))
    p.write({"repo": {}})
    p.run("apply", str(p.path), "--yes")
    result = p.run("sync", str(p.path), "--wait", "--timeout", "1s", expect=2)
    assert "Sync: 0 completed, 0 failed, 0 cancelled, 0 skipped, 1 timed out." in result.stdout
    assert "still running when --timeout ran out" in result.stdout and "error:" not in result.stderr


def test_sync_errors_print_once(emulator, tmp_path):
    p = Project(tmp_path, nango(emulator, sync_creation_delay=0.0, sync_duration=0.2, sync_fail=True))
    p.write({"repo": {}})
    p.run("apply", str(p.path), "--yes")
    failed = p.run("sync", str(p.path), "--wait", "--timeout", "30s", expect=1)
    assert failed.output.count("failed: sync failed: issues, pull-requests") == 1, failed.output
    assert "0 completed, 1 failed" in failed.stdout
    p.assert_no_secret()


def test_reconcile_emulate_serves_the_rate_limit_and_the_sync_delay(tmp_path):
    """`reconcile emulate nango --rate-limit N --sync-creation-delay S` as a real process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "emulate", "nango", "--api-key", KEY,
                             "--target", "github-prod", "--rate-limit", "3", "--sync-creation-delay", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = re.search(r"http://[\d.]+:\d+", proc.stderr.readline()).group(0)
        headers = {"Authorization": f"Bearer {KEY}"}
        deadline = time.monotonic() + 15
        while True:
            try:
                first = EMU_HTTP.post(url + "/connections", headers=headers, json={
                    "provider_config_key": "github-prod", "connection_id": "a",
                    "credentials": {"type": "OAUTH2", "access_token": "t"}})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator never answered"
                time.sleep(0.1)
        assert first.status_code == 201
        status = EMU_HTTP.get(url + "/sync/status", headers=headers,
                           params={"provider_config_key": "github-prod", "syncs": "*", "connection_id": "a"})
        assert len(status.json()["syncs"]) == 2  # no delay asked: the syncs exist at once
        answers = [EMU_HTTP.get(url + "/connections", headers=headers).status_code for _ in range(2)]
        assert answers == [200, 429]  # the fourth request of the minute
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sync_on_apply_waits_for_new_syncs_and_skips_a_connection_without_any(emulator, tmp_path):
    """A create's sync_on_apply triggers the syncs Nango makes after the create (not a trigger of
    nothing); on an integration without syncs the apply still succeeds, saying no sync started."""
    emu = nango(emulator, sync_creation_delay=0.4)
    p = Project(tmp_path, emu)
    p.write({"repo": {"sync_on_apply": True}, "meetings": {"source": "zoom-prod", "sync_on_apply": True}})
    result = p.run("apply", str(p.path), "--yes")
    assert "2 added" in result.stdout and "no sync started: Nango lists no syncs" in result.stderr
    assert p.requests("POST /sync/trigger") == 1
    with p.api() as c:
        syncs = c.get("/sync/status", params={"provider_config_key": "github-prod", "syncs": "*",
                                              "connection_id": "repo"}).json()["syncs"]
    # both triggered: running, or (sync_duration 0.3 s) finished; a never-run sync has no finishedAt
    assert len(syncs) == 2 and all(s["status"] == "RUNNING" or s.get("finishedAt") for s in syncs), syncs
