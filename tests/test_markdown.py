"""``reconcile plan --format markdown``: the PR comment. Secrets masked, size bounded, well formed."""
from __future__ import annotations

import re
import shutil

import pytest

from conftest import ROOT, run_cli
from reconciler.plan.model import Action, ActionKind, FieldChange, Plan, Unmanaged
from reconciler.plan.render import GITHUB_COMMENT_LIMIT, render_markdown

SECRET = "ghp_markdown_secret_8675309"


def _well_formed(md: str) -> None:
    assert md.count("```") % 2 == 0, "unbalanced code fences"
    assert len(re.findall(r"<details[ >]", md)) == md.count("</details>"), "unbalanced <details>"
    assert md.count("<summary>") == md.count("</summary>")
    depth = 0
    for line in md.split("\n"):  # fences open and close on their own lines, never nested
        if line.startswith("```"):
            depth = 1 - depth
    assert depth == 0


def _big_plan(n: int) -> Plan:
    actions = []
    for i in range(n):
        kind = (ActionKind.CREATE, ActionKind.UPDATE, ActionKind.REPLACE, ActionKind.DELETE)[i % 4]
        provider = ("airweave", "nango", "aimable")[i % 3]
        changes = (FieldChange("scope.repo_name", f"company/repo-{i}", f"company/repo-{i}-renamed"),
                   FieldChange("credentials", SENSITIVE_BEFORE, "(sensitive)", sensitive=True),
                   FieldChange("target", "ws_old", "ws_new", forces_replace=kind is ActionKind.REPLACE))
        actions.append(Action(kind, f"connector-{i:05d}", provider, provider, reason="changed",
                              changes=changes, live_id=f"id-{i}", has_credentials=True))
    return Plan("manifests", "digest", {"airweave": "airweave", "nango": "nango", "aimable": "aimable"}, actions,
                unmanaged=[Unmanaged("nango", "u1", "Hand made one")])


SENSITIVE_BEFORE = "(sensitive)"


def test_a_3000_connector_plan_fits_a_github_comment_and_stays_well_formed():
    md = render_markdown(_big_plan(3000))
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert "Plan truncated" in md and "plan artifact" in md
    assert md.startswith("### reconcile plan")
    assert "| airweave | airweave |" in md  # the summary table survives truncation: it comes first
    _well_formed(md)


@pytest.mark.parametrize("limit", [2_000, 2_500, 3_001, 4_444, 9_999])
def test_truncation_at_any_point_keeps_the_structure(limit):
    md = render_markdown(_big_plan(200), limit=limit)
    assert len(md) <= limit
    _well_formed(md)


def test_a_small_plan_is_not_truncated_and_shows_a_section_per_provider():
    md = render_markdown(_big_plan(12))
    assert "truncated" not in md
    assert md.count("<details") == 3
    assert "Plan: 3 to add, 3 to change, 3 to replace, 3 to destroy." in md
    _well_formed(md)


def test_secrets_never_appear_and_show_as_sensitive(tmp_path):
    work = tmp_path / "q"
    shutil.copytree(ROOT / "examples" / "quickstart", work, ignore=shutil.ignore_patterns(".reconcile"))
    env = {"QUICKSTART_GITHUB_TOKEN": SECRET, "QUICKSTART_SLACK_TOKEN": SECRET + "-slack"}
    created = run_cli("plan", str(work), "--sandbox", "--format", "markdown", env=env)
    assert created.code == 0, created.output
    assert SECRET not in created.output and "(sensitive)" in created.stdout
    _well_formed(created.stdout)
    assert run_cli("apply", str(work), "--sandbox", env=env).code == 0
    rotated = run_cli("plan", str(work), "--sandbox", "--format", "markdown",
                      env={**env, "QUICKSTART_GITHUB_TOKEN": SECRET + "-rotated"})
    assert rotated.code == 0, rotated.output
    assert SECRET not in rotated.output
    assert "(sensitive) -> (sensitive)" in rotated.stdout
    assert "<details open><summary><b>airweave</b> (airweave): changes</summary>" in rotated.stdout
    _well_formed(rotated.stdout)


def test_a_leaked_value_is_scrubbed_from_markdown():
    from reconciler.model import Secret

    Secret(SECRET + "-leak")  # registers the value with the scrubber, as loading a manifest does
    plan = Plan("m", "d", {"aw": "airweave"}, [Action(ActionKind.UPDATE, "x", "aw", "airweave", changes=(
        FieldChange("description", "old", f"token is {SECRET}-leak"),))])
    md = render_markdown(plan)
    assert f"{SECRET}-leak" not in md
