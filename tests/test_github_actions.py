"""The example GitHub Actions workflow: its structure, and its `run:` steps executed for real.

Each step's shell script runs with bash as GitHub runs it (`bash -eo pipefail`), with
GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, against an Airweave emulator standing in for the
platform: the pull-request plan, the apply of the saved plan on merge, the refusal of a stale plan,
and the nightly drift check, each with the exit codes the workflow expects.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from reconciler import load
from reconciler.providers import provider_class

WORKFLOW = ROOT / "examples" / "github-actions" / "reconcile.yml"
SECRET = "ghp_workflow_secret_424242"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow: dict, job: str) -> dict[str, dict]:
    return {s["id"]: s for s in workflow["jobs"][job]["steps"] if "id" in s}


def reconcile_commands(script: str) -> list[list[str]]:
    """The `reconcile ...` invocations of a run: script, without redirections and `|| ...`."""
    out = []
    for line in script.splitlines():
        line = line.strip()
        if not line.startswith("reconcile "):
            continue
        line = re.split(r"\s(?:>>?|\|\||&&|\|)\s", line)[0]
        out.append(shlex.split(line))
    return out


def test_triggers_permissions_and_jobs(workflow):
    on = workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as True
    assert set(on) >= {"pull_request", "push", "schedule"}
    assert on["push"]["branches"] == ["main"]
    assert on["schedule"][0]["cron"]
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert "pull_request" in jobs["plan"]["if"] and "push" in jobs["apply"]["if"] and "schedule" in jobs["drift"]["if"]
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert jobs["drift"]["permissions"]["issues"] == "write"
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False


def test_plan_comment_is_updated_not_duplicated_and_plan_is_uploaded(workflow):
    steps = workflow["jobs"]["plan"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "plan.json" and upload["with"]["name"] == "reconcile-plan"
    comment = next(s for s in steps if s.get("uses", "").startswith("actions/github-script"))["with"]["script"]
    assert "<!-- reconcile-plan -->" in comment and "updateComment" in comment and "createComment" in comment
    plan_cmds = reconcile_commands(_steps(workflow, "plan")["plan"]["run"])
    assert plan_cmds == [["reconcile", "plan", "$MANIFESTS", "-o", "plan.json", "--format", "markdown",
                          "--detailed-exitcode"]]
    download = _steps(workflow, "apply")["reviewed"]["run"]
    assert "--name reconcile-plan" in download  # the same artifact the PR job uploads
    drift = next(s for s in workflow["jobs"]["drift"]["steps"] if "reconcile-drift" in s.get("with", {}).get("script", ""))
    assert "issues.update" in drift["with"]["script"] and "issues.create" in drift["with"]["script"]


def test_every_reconcile_command_exists_with_those_options(workflow):
    from reconciler.cli import cli

    seen = set()
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for argv in reconcile_commands(step.get("run", "")):
                command = cli.get_command(None, argv[1])
                known = {o for p in command.params for o in getattr(p, "opts", [])}
                assert all(a in known for a in argv[2:] if a.startswith("-")), argv
                seen.add(argv[1])
    assert seen == {"validate", "fmt", "plan", "apply", "drift"}


@pytest.fixture
def repo(tmp_path, emulator):
    """A checkout of a GitOps repository: the quickstart manifests under connectors/."""
    emu = emulator("airweave", targets=["quickstart-docs"])
    shutil.copytree(ROOT / "examples" / "quickstart", tmp_path / "connectors",
                    ignore=shutil.ignore_patterns(".reconcile"))
    env = {"AIRWEAVE_URL": emu.url, "AIRWEAVE_API_KEY": "test-key", "QUICKSTART_GITHUB_TOKEN": SECRET,
           "QUICKSTART_SLACK_TOKEN": SECRET + "-slack"}
    return tmp_path, env


def run_step(step: dict, cwd: Path, env: dict[str, str]) -> tuple[int, dict[str, str], str]:
    """Run a step's script as GitHub does; returns (exit code, $GITHUB_OUTPUT values, output)."""
    output, summary = cwd / "github_output", cwd / "step_summary"
    output.write_text("")
    full = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    full.update(env, MANIFESTS="connectors", NO_COLOR="1", GITHUB_OUTPUT=str(output),
                GITHUB_STEP_SUMMARY=str(summary), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=120)
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc.returncode, values, proc.stdout + proc.stderr


def edit_on_platform(root: Path, env: dict[str, str]) -> None:
    """Someone changes the connector in the platform's dashboard (a real API call)."""
    manifest = load(root / "connectors", env=env)
    provider = provider_class("airweave")(manifest.providers["airweave"])
    try:
        connector = manifest.connectors["quickstart-github"]
        live = next(x for x in provider.list(["quickstart-docs"]) if x.key == "quickstart-github")
        provider.update(dataclasses.replace(connector, description="edited by hand"), provider.read(live),
                        frozenset({"description"}))
    finally:
        provider.close()


def test_pull_request_then_merge_then_nightly_drift(workflow, repo):
    root, env = repo
    pr, apply_, drift = _steps(workflow, "plan"), _steps(workflow, "apply"), _steps(workflow, "drift")

    for step in ("validate", "fmt"):
        code, _, out = run_step(pr[step], root, env)
        assert code == 0, out
    code, values, out = run_step(pr["plan"], root, env)
    assert code == 0 and values["changes"] == "true", out  # reconcile plan exited 2: changes present
    comment = (root / "plan.md").read_text()
    assert "<details open>" in comment and "Plan: 2 to add" in comment
    assert SECRET not in comment + (root / "plan.json").read_text() + out

    # merged: the job downloads plan.json from the PR run (here: it is already in the workspace)
    code, _, out = run_step(apply_["apply"], root, env)
    assert code == 0 and "Apply complete! Connectors: 2 added" in out, out

    code, values, out = run_step(pr["plan"], root, env)
    assert code == 0 and values["changes"] == "false", out  # converged: plan exits 0

    code, values, out = run_step(drift["drift"], root, env)
    assert code == 0 and values["code"] == "0", out
    edit_on_platform(root, env)
    code, values, out = run_step(drift["drift"], root, env)
    assert code == 0 and values["code"] == "2", out  # drift: the issue step runs
    assert '"edited by hand" -> "Quickstart repository"' in (root / "drift.md").read_text()


def test_a_reviewed_plan_refuses_to_apply_after_live_state_moved(workflow, repo):
    root, env = repo
    code, values, out = run_step(_steps(workflow, "plan")["plan"], root, env)
    assert values["changes"] == "true", out
    assert run_step(_steps(workflow, "apply")["fresh"], root, env)[0] == 0  # e.g. another PR's apply
    code, values, out = run_step(_steps(workflow, "plan")["plan"], root, env)
    edit_on_platform(root, env)

    code, _, out = run_step(_steps(workflow, "apply")["apply"], root, env)
    assert code == 1 and "moved since" in out, out  # the job fails; nothing was changed
    summary = (root / "step_summary").read_text()
    assert "was not applied" in summary and '"edited by hand" -> "Quickstart repository"' in summary
    # the fresh path (workflow_dispatch "apply a fresh plan") converges
    assert run_step(_steps(workflow, "apply")["fresh"], root, env)[0] == 0
    assert run_step(_steps(workflow, "drift")["drift"], root, env)[1]["code"] == "0"
