"""Terraform's escape hatches through the CLI against an Airweave emulator: ``--target`` (plan, apply,
drift, saved plans), ``--replace`` and ``--destroy`` (with ``--max-deletes`` and ``prevent_destroy``)."""
from __future__ import annotations

import json

import pytest

from conftest import EMU_HTTP, run_cli
from reconciler.plan.model import Action, ActionKind, Plan
from reconciler.plan.targeting import Selection, select
from reconciler.state.file import FileBackend

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
    scope: {{repo_name: company/docs}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
  wiki-github:
    provider: aw
    source: github
    target: docs-ab123
    scope: {{repo_name: company/wiki}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
  team-slack:
    provider: aw
    source: slack
    target: docs-ab123
    credentials: {{type: oauth_token, access_token: "${{GH_TOKEN}}"}}{protect}
"""
ENV = {"AW_KEY": "test-key", "GH_TOKEN": "ghp_target_secret_31337"}
PROTECT = "\n    lifecycle: {prevent_destroy: true}"


@pytest.fixture
def repo(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])

    def write(protect: bool = False) -> None:
        (tmp_path / "m.yaml").write_text(MANIFEST.format(url=emu.url, protect=PROTECT if protect else ""))

    write()
    return tmp_path, emu, write


def state(root) -> dict:
    return {n: e.id for n, e in FileBackend(root / ".reconcile" / "state.json").load().entries.items()}


def live(emu) -> set[str]:
    items = EMU_HTTP.get(f"{emu.url}/source-connections", headers={"x-api-key": "test-key"}).json()
    return {i["name"] for i in items}


def test_target_narrows_plan_apply_and_drift_with_the_partial_warning(repo):
    root, emu, _ = repo
    r = run_cli("plan", str(root), "--target", "*-github", env=ENV)
    assert r.code == 0, r.output
    assert "docs-github" in r.stdout and "wiki-github" in r.stdout and "team-slack" not in r.stdout
    assert "resource targeting is in effect" in r.stdout and "Plan: 2 to add" in r.stdout

    r = run_cli("apply", str(root), "--yes", "--target", "aw.docs-github", env=ENV)
    assert r.code == 0 and "1 added" in r.stdout, r.output
    assert r.stdout.rstrip().endswith("Run `reconcile plan` without --target to see what is still pending.")
    assert set(state(root)) == {"docs-github"} and live(emu) == {"docs-github"}

    # the rest is still pending for a full plan; drift limited to the applied one sees none
    assert "Plan: 2 to add" in run_cli("plan", str(root), env=ENV).stdout
    assert run_cli("drift", str(root), "--target", "docs-github", env=ENV).code == 0
    assert run_cli("drift", str(root), env=ENV).code == 2

    bad = run_cli("plan", str(root), "--target", "nope-*", env=ENV)
    assert bad.code == 1 and "--target nope-*: no connector" in bad.stderr and "Traceback" not in bad.output


def test_a_saved_targeted_plan_applies_only_its_targets(repo, tmp_path_factory):
    root, emu, _ = repo
    out = tmp_path_factory.mktemp("plans") / "plan.json"
    r = run_cli("plan", str(root), "--target", "wiki-github", "-o", str(out), env=ENV)
    assert r.code == 0, r.output
    assert json.loads(out.read_text())["options"]["target"] == ["wiki-github"]
    refused = run_cli("apply", str(out), "--target", "team-slack", env=ENV)
    assert refused.code == 1 and "already carries them" in refused.stderr
    r = run_cli("apply", str(out), env=ENV)
    assert r.code == 0 and "1 added" in r.stdout, r.output
    assert live(emu) == {"wiki-github"}


def test_replace_forces_delete_then_create_of_a_healthy_connector(repo):
    root, emu, _ = repo
    assert run_cli("apply", str(root), "--yes", env=ENV).code == 0
    before = state(root)
    r = run_cli("plan", str(root), "--replace", "wiki-github", env=ENV)
    assert "must be replaced (replacement requested with --replace)" in r.stdout, r.output
    assert "Plan: 0 to add, 0 to change, 1 to replace" in r.stdout
    assert run_cli("apply", str(root), "--yes", "--replace", "wiki-github", "--max-deletes", "0", env=ENV).code == 1
    r = run_cli("apply", str(root), "--yes", "--replace", "wiki-github", env=ENV)
    assert r.code == 0 and "1 replaced" in r.stdout, r.output
    after = state(root)
    assert after["wiki-github"] != before["wiki-github"] and after["docs-github"] == before["docs-github"]
    assert live(emu) == {"docs-github", "wiki-github", "team-slack"}
    unknown = run_cli("plan", str(root), "--replace", "ghost", env=ENV)
    assert unknown.code == 1 and "--replace ghost: no connector" in unknown.stderr


def test_destroy_deletes_what_the_state_owns_honouring_guards(repo):
    root, emu, write = repo
    assert run_cli("apply", str(root), "--yes", "--target", "*-github", env=ENV).code == 0
    # an object the state does not own stays: create one by hand
    EMU_HTTP.post(f"{emu.url}/source-connections", headers={"x-api-key": "test-key"},
               json={"name": "hand-made", "short_name": "github", "readable_collection_id": "docs-ab123",
                     "config": {"repo_name": "company/other"},
                     "authentication": {"credentials": {"personal_access_token": "x"}}}).raise_for_status()
    write(protect=True)
    assert run_cli("apply", str(root), "--yes", "--target", "team-slack", env=ENV).code == 0

    blocked = run_cli("plan", str(root), "--destroy", env=ENV)
    assert blocked.code == 1 and "prevent_destroy" in blocked.stderr and "aw.team-slack" in blocked.stderr

    r = run_cli("plan", str(root), "--destroy", "--target", "*-github", env=ENV)
    assert r.code == 0 and "Plan: 0 to add, 0 to change, 0 to replace, 2 to destroy" in r.stdout, r.output
    guarded = run_cli("apply", str(root), "--yes", "--destroy", "--target", "*-github", "--max-deletes", "1", env=ENV)
    assert guarded.code == 1 and "--max-deletes 1" in guarded.stderr
    assert live(emu) == {"docs-github", "wiki-github", "team-slack", "hand-made"}

    r = run_cli("apply", str(root), "--yes", "--destroy", "--target", "*-github", env=ENV)
    assert r.code == 0 and "2 destroyed" in r.stdout, r.output
    assert live(emu) == {"team-slack", "hand-made"} and set(state(root)) == {"team-slack"}


def _action(kind: ActionKind, name: str, live_id: str | None = "x") -> Action:
    return Action(kind, name, "aw", "airweave", live_id=live_id, live_token="t")


def test_selection_rules():
    plan = Plan("m", "d", {"aw": "airweave"}, [
        _action(ActionKind.CREATE, "new", live_id=None), _action(ActionKind.NOOP, "kept"),
        _action(ActionKind.UPDATE, "adopted"), _action(ActionKind.DELETE, "orphan")])
    destroyed = select(plan, Selection(destroy=True), owned={"kept", "orphan"}, protected=())
    assert [(a.name, a.kind) for a in destroyed.actions] == [("kept", ActionKind.DELETE), ("orphan", ActionKind.DELETE)]
    assert plan.actions[1].kind is ActionKind.NOOP  # the input plan is a value: untouched
    with pytest.raises(Exception, match="not in the state yet"):
        select(plan, Selection(replace=("adopted",)), owned={"kept"}, protected=())
    with pytest.raises(Exception, match="prevent_destroy"):
        select(plan, Selection(replace=("k*",)), owned={"kept"}, protected={"kept"})
    assert Selection.from_json(Selection(("a",), ("b",), True).to_json()) == Selection(("a",), ("b",), True)
