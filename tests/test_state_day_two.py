"""`reconcile state pull|push|force-unlock` through the CLI on both backends (file, and a real
PostgreSQL from tests/pg.py), and `state list|show` without the providers' variables."""
from __future__ import annotations

import json
import re

import pytest

from conftest import run_cli
from pg import server
from reconciler.state import holder_description
from reconciler.state.file import FileBackend
from reconciler.state.postgres import PostgresBackend
from test_targeting import ENV, MANIFEST

PG_STATE = "state:\n  backend: postgres\n  dsn: ${STATE_DSN}\n  name: day-two\n"


@pytest.fixture(params=["file", "postgres"])
def applied(request, tmp_path, emulator):
    """Manifests applied once (3 connectors) with the state on the given backend."""
    emu = emulator("airweave", targets=["docs-ab123"])
    env = dict(ENV)
    text = MANIFEST.format(url=emu.url, protect="")
    if request.param == "postgres":
        env["STATE_DSN"] = server().new_database()
        text = text.replace("version: 1\n", "version: 1\n" + PG_STATE, 1)
    (tmp_path / "m.yaml").write_text(text)
    r = run_cli("apply", str(tmp_path), "--yes", env=env)
    assert r.code == 0, r.output
    if request.param == "postgres":
        backend = PostgresBackend(env["STATE_DSN"], "day-two")
    else:
        backend = FileBackend(tmp_path / ".reconcile" / "state.json")
    yield tmp_path, env, backend
    backend.close()


def test_pull_edit_push_with_lineage_and_serial_checks(applied, tmp_path_factory):
    root, env, backend = applied
    state_env = {k: v for k, v in env.items() if k == "STATE_DSN"}  # no provider variable needed
    pulled = run_cli("state", "pull", str(root), env=state_env)
    assert pulled.code == 0, pulled.output
    doc = json.loads(pulled.stdout)
    assert set(doc["connectors"]) == {"docs-github", "wiki-github", "team-slack"} and doc["serial"] > 0
    work = tmp_path_factory.mktemp("push")

    del doc["connectors"]["team-slack"]  # forget one, as `state rm` would
    (work / "edited.json").write_text(json.dumps(doc))
    r = run_cli("state", "push", str(root), str(work / "edited.json"), env=state_env)
    assert r.code == 0 and "Pushed 2 connectors" in r.stdout, r.output
    after = backend.load()
    assert set(after.entries) == {"docs-github", "wiki-github"} and after.serial == doc["serial"] + 1
    assert after.lineage == doc["lineage"]

    stale = run_cli("state", "push", str(root), str(work / "edited.json"), env=state_env)  # serial now behind
    assert stale.code == 1 and "moved since it was pulled" in stale.stderr
    other = dict(doc, lineage="0000-other-state", serial=999)
    (work / "other.json").write_text(json.dumps(other))
    foreign = run_cli("state", "push", str(root), str(work / "other.json"), env=state_env)
    assert foreign.code == 1 and "comes from another state" in foreign.stderr
    assert set(backend.load().entries) == {"docs-github", "wiki-github"}  # refusals changed nothing

    forced = run_cli("state", "push", str(root), "-", "--force", input=json.dumps(other), env=state_env)
    assert forced.code == 0, forced.output
    assert backend.load().lineage == "0000-other-state"

    (work / "bad.json").write_text(json.dumps({"version": 1, "lineage": "x", "serial": 1,
                                               "connectors": {"a": {"provider": "aw"}}}))
    bad = run_cli("state", "push", str(root), str(work / "bad.json"), "--force", env=state_env)
    assert bad.code == 1 and "'a' is not a valid entry" in bad.stderr and "Traceback" not in bad.output

    # the plan sees what was pushed: the forgotten connector is now unmanaged, not deleted
    plan = run_cli("plan", str(root), env=env)
    assert "team-slack" in plan.stdout and "to destroy" in plan.stdout and "0 to destroy" in plan.stdout


def test_force_unlock_breaks_a_stuck_lock_only_with_its_id(applied):
    root, env, backend = applied
    holder = holder_description()
    lock_id = re.search(r"lock id (\w+)", holder).group(1)
    stuck = backend.lock(timeout=0, holder=holder)
    stuck.__enter__()  # a run that hangs while holding the lock
    try:
        locked = run_cli("apply", str(root), "--yes", "--replace", "wiki-github", env=env)
        assert locked.code == 1 and f"lock id {lock_id}" in locked.stderr, locked.output

        wrong = run_cli("state", "force-unlock", str(root), "0123456789ab", "--yes", env=env)
        assert wrong.code == 1 and "does not match" in wrong.stderr
        unasked = run_cli("state", "force-unlock", str(root), lock_id, env=env)
        assert unasked.code == 1 and "--yes" in unasked.stderr

        r = run_cli("state", "force-unlock", str(root), lock_id, "--yes", env=env)
        assert r.code == 0 and "Unlocked" in r.stdout and f"lock id {lock_id}" in r.stdout, r.output
        again = run_cli("apply", str(root), "--yes", "--replace", "wiki-github", env=env)
        assert again.code == 0 and "1 replaced" in again.stdout, again.output
    finally:
        try:
            stuck.__exit__(None, None, None)
        except Exception:  # the PostgreSQL session was terminated under it: that is the point
            pass
    r = run_cli("state", "force-unlock", str(root), lock_id, "--yes", env=env)
    assert r.code == 1 and "not locked" in r.stderr


def test_state_list_and_show_need_no_provider_variables(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    (tmp_path / "m.yaml").write_text(MANIFEST.format(url="${AW_URL}", protect=""))
    assert run_cli("apply", str(tmp_path), "--yes", "--target", "docs-github", env=ENV | {"AW_URL": emu.url}).code == 0
    for args in (("list",), ("show", "docs-github"), ("pull",)):
        r = run_cli("state", args[0], str(tmp_path), *args[1:], env={})
        assert r.code == 0, r.output
        assert "docs-github" in r.stdout and "\\x00" not in r.output and "unset" not in r.output
    missing = run_cli("state", "show", str(tmp_path), "nope", env={})
    assert missing.code == 1 and "'nope' is not in the state" in missing.stderr
