"""The Python API (``from reconciler import load, plan, apply``) against an Airweave emulator."""
from __future__ import annotations

from pathlib import Path

import pytest

import reconciler
from reconciler import apply, load, plan
from reconciler.errors import ManifestError, PlanStale, ReconcileError
from reconciler.plan.model import ActionKind

TOKEN = "ghp_api_secret_5551234"
MANIFEST = """\
version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{AW_KEY}}
connectors:
  docs:
    provider: aw
    source: github
    target: docs-ab123
    scope:
      repo_name: company/docs
      branch: {branch}
    credentials:
      personal_access_token: ${{GH_TOKEN}}
"""


@pytest.fixture
def setup(emulator, tmp_path):
    emu = emulator("airweave", targets=["docs-ab123"])
    path = tmp_path / "connectors.yaml"
    env = {"AW_KEY": "test-key", "GH_TOKEN": TOKEN}

    def write(branch: str) -> Path:
        path.write_text(MANIFEST.format(url=emu.url, branch=branch))
        return path

    write("main")
    return path, env, write


def test_package_exports_the_api():
    assert {"load", "plan", "apply", "PlanResult", "ApplyReport"} <= set(reconciler.__all__)
    assert reconciler.plan is plan and callable(reconciler.apply)


def test_plan_apply_converges_and_never_holds_the_secret(setup):
    path, env, write = setup
    manifest = load(path, env=env)
    assert list(manifest.connectors) == ["docs"]

    first = plan(manifest, parallelism=2)
    assert first.has_changes
    assert [a.kind for a in first.plan.actions] == [ActionKind.CREATE]
    for fmt in ("text", "json", "markdown"):
        text = first.render(fmt)
        assert TOKEN not in text and "(sensitive)" in text

    report = apply(first)
    assert not report.failed and report.count(ActionKind.CREATE) == 1
    assert TOKEN not in (path.parent / ".reconcile" / "state.json").read_text()

    second = plan(load(path, env=env))
    assert not second.has_changes
    assert apply(second).outcomes == []  # nothing to do: no calls

    write("release")
    third = plan(load(path, env=env))
    [action] = third.plan.actions
    assert action.kind is ActionKind.UPDATE
    assert [(c.path, c.before, c.after) for c in action.changes] == [("scope.branch", "main", "release")]
    assert apply(third).count(ActionKind.UPDATE) == 1
    assert not plan(load(path, env=env)).has_changes


def test_apply_refuses_a_plan_whose_live_state_moved(setup):
    path, env, write = setup
    stale = plan(load(path, env=env))
    apply(plan(load(path, env=env)))  # someone else created it meanwhile
    with pytest.raises(PlanStale, match="live state moved"):
        apply(stale)


def test_apply_refuses_a_plan_whose_variables_changed(setup):
    path, env, _ = setup
    reviewed = plan(load(path, env=env))
    rotated = load(path, env={**env, "GH_TOKEN": "ghp_rotated_999"})
    changed = type(reviewed)(reviewed.plan, rotated, reviewed.options)
    with pytest.raises(PlanStale, match="changed since the plan was made"):
        apply(changed)


def test_max_deletes_aborts_before_any_call(setup, tmp_path):
    path, env, _ = setup
    apply(plan(load(path, env=env)))
    text = path.read_text()
    path.write_text(text[: text.index("connectors:")] + "connectors: {}\n")
    result = plan(load(path, env=env))
    assert result.plan.deletes == 1
    with pytest.raises(ReconcileError, match="max-deletes 0"):
        apply(result, max_deletes=0)
    assert plan(load(path, env=env)).plan.deletes == 1  # still there


def test_load_reports_every_problem_with_its_place(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nconnectors:\n  x:\n    provider: nowhere\n")
    with pytest.raises(ManifestError) as info:
        load(bad, env={})
    assert all(d.location and d.location.file.endswith("bad.yaml") for d in info.value.diagnostics)


def test_sandbox_needs_no_account(tmp_path):
    root = Path(__file__).resolve().parent.parent / "examples" / "quickstart" / "connectors.yaml"
    path = tmp_path / "connectors.yaml"
    path.write_text(root.read_text())
    manifest = load(path, env={}, sandbox=True)
    result = plan(manifest)  # sandbox=True once, at load: plan and apply follow it
    assert result.options.sandbox and result.plan.summary()["add"] == 2
    assert not apply(result).failed
    assert (path.parent / ".reconcile" / "sandbox" / "state.json").exists()
    assert not plan(load(path, env={}, sandbox=True)).has_changes
    targeted = plan(load(path, env={}, sandbox=True), replace=["quickstart-slack"])
    assert [a.kind.value for a in targeted.plan.actions if a.changes_something] == ["replace"]
    assert apply(targeted).count(ActionKind.REPLACE) == 1
