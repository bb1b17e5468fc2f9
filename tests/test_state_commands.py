"""`reconcile state list|show|rm|mv` and `moved:` as real processes against the Aimable emulator.

Aimable stores no name, so the state alone maps a connector's name to its live id: exactly where a
rename without `state mv` (or `moved:`) would delete and recreate, and where `state rm` matters.
"""
from __future__ import annotations

import json

import yaml

from conftest import run_cli
from reconciler.state.file import FileBackend

SECRET = "ya29.state-cmd-secret-token"

CONNECTOR = """  {name}:
    provider: aim
    source: google-drive
    target: sp1/col1
    scope:
      folder_ids: [{folder}]
    credentials:
      access_token: ${{DRIVE_TOKEN}}
"""


def write(tmp_path, url: str, connectors: dict[str, str], extra: str = "") -> str:
    body = "".join(CONNECTOR.format(name=n, folder=f) for n, f in connectors.items())
    (tmp_path / "m.yaml").write_text(f"""version: 1
providers:
  aim:
    type: aimable
    url: {url}
    api_key: ${{AIM_KEY}}
connectors:
{body}{extra}""")
    return str(tmp_path)


def env() -> dict[str, str]:
    return {"AIM_KEY": "test-key", "DRIVE_TOKEN": SECRET}


def plan_json(path: str) -> dict:
    r = run_cli("plan", path, "--format", "json", env=env())
    assert r.code == 0, r.output
    return json.loads(r.stdout)


def kinds(plan: dict) -> dict[str, str]:
    return {a["name"]: a["action"] for a in plan["actions"]}


def applied(tmp_path, emulator, names=("alpha", "beta")) -> tuple[str, str]:
    emu = emulator("aimable", targets=["sp1/col1"])
    path = write(tmp_path, emu.url, {n: f"f-{n}" for n in names})
    r = run_cli("apply", path, "--yes", env=env())
    assert r.code == 0, r.output
    return path, emu.url


def test_list_and_show(tmp_path, emulator):
    path, _ = applied(tmp_path, emulator)
    r = run_cli("state", "list", path, env=env())
    assert r.code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROVIDER", "TYPE", "ID", "LAST", "APPLIED"]
    state = FileBackend(tmp_path / ".reconcile" / "state.json").load()
    for name in ("alpha", "beta"):
        row = next(line.split() for line in lines if line.startswith(name + " "))
        assert row[:4] == [name, "aim", "aimable", state.entries[name].id]
        assert row[4] == state.entries[name].applied_at
    shown = run_cli("state", "show", path, "alpha", env=env())
    assert shown.code == 0, shown.output
    doc = yaml.safe_load(shown.stdout)
    assert doc["id"] == state.entries["alpha"].id and doc["fingerprint"].startswith("v1:")
    as_json = json.loads(run_cli("state", "show", path, "alpha", "--format", "json", env=env()).stdout)
    assert as_json == doc
    for out in (r.output, shown.output):
        assert SECRET not in out
    # neither AIM_KEY nor DRIVE_TOKEN: the state commands never call a platform
    missing = run_cli("state", "show", path, "nope", env={})
    assert missing.code == 1 and "'nope' is not in the state" in missing.stderr and "alpha" in missing.stderr


def test_rename_without_mv_would_recreate_with_mv_it_does_not(tmp_path, emulator):
    path, url = applied(tmp_path, emulator)
    write(tmp_path, url, {"alpha-renamed": "f-alpha", "beta": "f-beta"})
    assert kinds(plan_json(path)) == {"alpha": "delete", "alpha-renamed": "create", "beta": "no-op"}
    r = run_cli("state", "mv", path, "alpha", "alpha-renamed", env=env())
    assert r.code == 0, r.output
    plan = plan_json(path)
    assert kinds(plan) == {"alpha-renamed": "no-op", "beta": "no-op"}
    assert not plan["changes_present"]
    bad = run_cli("state", "mv", path, "beta", "alpha-renamed", env=env())
    assert bad.code == 1 and "already in the state" in bad.stderr


def test_moved_block_renames_without_delete_or_create(tmp_path, emulator):
    path, url = applied(tmp_path, emulator)
    write(tmp_path, url, {"alpha-renamed": "f-alpha", "beta": "f-beta"},
          extra="moved:\n  - from: alpha\n    to: alpha-renamed\n")
    plan = plan_json(path)
    assert kinds(plan) == {"alpha-renamed": "no-op", "beta": "no-op"}
    assert plan["moved"] == [{"from": "alpha", "to": "alpha-renamed"}]
    r = run_cli("apply", path, "--yes", env=env())
    assert r.code == 0, r.output
    assert "0 added" in r.stdout and "0 destroyed" in r.stdout
    assert sorted(FileBackend(tmp_path / ".reconcile" / "state.json").load().entries) == ["alpha-renamed", "beta"]


def test_rm_leaves_the_connector_unmanaged(tmp_path, emulator):
    path, url = applied(tmp_path, emulator)
    alpha_id = FileBackend(tmp_path / ".reconcile" / "state.json").load().entries["alpha"].id
    write(tmp_path, url, {"beta": "f-beta"})  # alpha removed from git
    assert kinds(plan_json(path))["alpha"] == "delete"
    r = run_cli("state", "rm", path, "alpha", env=env())
    assert r.code == 0, r.output
    assert "stays on the platform, unmanaged" in r.stdout
    plan = plan_json(path)
    assert kinds(plan) == {"beta": "no-op"}
    assert [u["id"] for u in plan["unmanaged"]] == [alpha_id]
    assert not plan["changes_present"]


def test_rm_and_mv_wait_for_the_state_lock(tmp_path, emulator):
    path, _ = applied(tmp_path, emulator)
    backend = FileBackend(tmp_path / ".reconcile" / "state.json")
    with backend.lock(timeout=0, holder="pid 777 (ci@runner-3, since earlier)"):
        for args in (("rm", path, "alpha"), ("mv", path, "alpha", "gamma")):
            r = run_cli("state", *args, env=env())
            assert r.code == 1
            assert "locked by pid 777 (ci@runner-3" in r.stderr
    assert sorted(backend.load().entries) == ["alpha", "beta"]  # nothing changed while locked
