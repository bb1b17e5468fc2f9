"""The PostgreSQL state through the CLI: two CI runners applying at once, and no secret in sight."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg

from conftest import run_cli
from pg import server

PASSWORD = "pg-Pa55word-never-printed"  # trust auth ignores it; it must still never be shown
TOKEN = "ghp_pg_state_secret"
N = 6


def manifest(url: str) -> str:
    connectors = "".join(f"""  repo-{i:02d}:
    provider: aw
    source: github
    target: docs-ab123
    scope: {{repo_name: team/repo-{i}}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
""" for i in range(N))
    return f"""version: 1
state:
  backend: postgres
  dsn: ${{STATE_DSN}}
  name: team-docs
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{AW_KEY}}
connectors:
{connectors}"""


def test_two_applies_at_once_one_wins_the_other_names_the_holder(tmp_path, emulator):
    dsn = server().new_database().replace("reconcile@", f"reconcile:{PASSWORD}@")
    gate = threading.Event()  # closed: the winner waits mid-apply, holding the lock, until the loser is done
    emu = emulator("airweave", targets=["docs-ab123"], gate=gate)
    (tmp_path / "m.yaml").write_text(manifest(emu.url))
    env = {"STATE_DSN": dsn, "AW_KEY": "test-key", "GH_TOKEN": TOKEN, "NO_COLOR": "1"}
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")} | env
    cmd = [sys.executable, "-m", "reconciler", "apply", str(tmp_path), "--yes", "--parallelism", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    _wait_for_advisory_lock(dsn, first)  # the second starts while the first is mid-apply
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    lost = (second.wait(timeout=60), *second.communicate())
    gate.set()
    results = [(first.wait(timeout=60), *first.communicate()), lost]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    winner = next(r for r in results if r[0] == 0)
    loser = next(r for r in results if r[0] == 1)
    assert f"{N} added" in winner[1]
    assert "PostgreSQL state 'team-docs' is locked by pid " in loser[2], loser
    assert "another apply is running" in loser[2]

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT name, entry->>'id', entry->>'fingerprint' FROM reconcile_entries "
                            "WHERE state = 'team-docs' ORDER BY name").fetchall()
        version = conn.execute("SELECT max(version) FROM reconcile_schema_version").fetchone()[0]
    assert [r[0] for r in rows] == [f"repo-{i:02d}" for i in range(N)]  # no lost rows
    assert all(r[1] and r[2].startswith("v1:") for r in rows)
    assert version == 1

    plan = run_cli("plan", str(tmp_path), "--detailed-exitcode", env=env)
    assert plan.code == 0, plan.output
    listed = run_cli("state", "list", str(tmp_path), env={"STATE_DSN": dsn})
    assert listed.code == 0 and sum(1 for line in listed.stdout.splitlines() if line.startswith("repo-")) == N
    for out in [r[1] + r[2] for r in results] + [plan.output, listed.output]:
        assert PASSWORD not in out and TOKEN not in out and dsn not in out


def test_state_name_isolates_and_rm_persists(tmp_path, emulator):
    dsn = server().new_database()
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(manifest(emu.url))
    env = {"STATE_DSN": dsn, "AW_KEY": "test-key", "GH_TOKEN": TOKEN}
    assert run_cli("apply", str(tmp_path), "--yes", env=env).code == 0
    r = run_cli("state", "rm", str(tmp_path), "repo-00", env=env)
    assert r.code == 0, r.output
    other = tmp_path / "other"
    other.mkdir()
    (other / "m.yaml").write_text(manifest(emu.url).replace("name: team-docs", "name: team-other"))
    with psycopg.connect(dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM reconcile_entries WHERE state = 'team-docs'")]
    assert sorted(names) == [f"repo-{i:02d}" for i in range(1, N)]
    empty = run_cli("state", "list", str(other), env={"STATE_DSN": dsn})
    assert empty.code == 0 and "owns no connectors" in empty.stdout


def test_unreachable_database_is_an_error_without_the_dsn(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(manifest(emu.url))
    dsn = f"postgresql://reconcile:{PASSWORD}@127.0.0.1:1/nowhere?connect_timeout=2"
    started = time.monotonic()
    r = run_cli("plan", str(tmp_path), env={"STATE_DSN": dsn, "AW_KEY": "test-key", "GH_TOKEN": TOKEN})
    assert r.code == 1 and "cannot connect to the PostgreSQL state 'team-docs'" in r.stderr, r.output
    assert PASSWORD not in r.output and time.monotonic() - started < 30
    missing = run_cli("state", "list", str(tmp_path), env={})
    assert missing.code == 1 and "STATE_DSN" in missing.stderr


def _wait_for_advisory_lock(dsn: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                            ).fetchone()[0]:
                return
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.01)
    raise AssertionError("the first apply never took the lock")
