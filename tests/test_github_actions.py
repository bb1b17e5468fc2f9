"""The composite action (action.yml) and the example workflow that uses it: their structure, and the
action's `run:` steps executed for real.

Each step's shell script runs with bash as GitHub runs it (`bash -eo pipefail`), with
GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files and the env the action maps its inputs to, against an
Airweave emulator standing in for the platform, in git checkouts of a bare "origin": the PR plan,
the apply of the reviewed plan, a merge/merge/drift sequence in which GitHub cancelled a pending
apply run, the --max-deletes guard of an unreviewed plan, and the nightly drift check.

Steps that only call GitHub's API (`gh`, github-script, artifact upload/download) are checked
structurally; the test puts the downloaded artifact where the download step would (`reviewed/`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, reconcile_command
from reconciler import load
from reconciler.providers import provider_class

WORKFLOW = ROOT / "examples" / "github-actions" / "reconcile.yml"
ACTION = ROOT / "action.yml"
SECRET = "ghp_workflow_secret_424242"
GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def action() -> dict:
    return yaml.safe_load(ACTION.read_text())


def steps(action: dict) -> dict[str, dict]:
    return {s["id"]: s for s in action["runs"]["steps"] if "id" in s}


def reconcile_commands(script: str) -> list[list[str]]:
    """The `reconcile ...` invocations of a run: script, without redirections and `|| ...`."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line.startswith("reconcile "):
            continue
        line = re.split(r"\s(?:>>?|\|\||&&|\|)\s|\s2>&1", line)[0]
        out.append(shlex.split(line))
    return out


def test_workflow_uses_the_action_with_apply_and_drift_in_separate_groups(workflow):
    on = workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as True
    assert set(on) >= {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"] and on["schedule"][0]["cron"]
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert "pull_request" in jobs["plan"]["if"] and "push" in jobs["apply"]["if"] and "schedule" in jobs["drift"]["if"]
    assert jobs["plan"]["permissions"]["pull-requests"] == "write"
    assert jobs["drift"]["permissions"]["issues"] == "write" and jobs["apply"]["permissions"]["actions"] == "read"
    assert jobs["apply"]["concurrency"] == {"group": "reconcile-apply", "cancel-in-progress": False}
    # GitHub cancels an older *pending* run of a group when a newer one queues: drift must not share it
    assert jobs["drift"]["concurrency"]["group"] != jobs["apply"]["concurrency"]["group"]
    for name, job in jobs.items():
        used = [s for s in job["steps"] if "connector-reconciler@" in s.get("uses", "")]
        assert len(used) == 1 and used[0]["with"]["command"] == name, name
        assert not any("run" in s for s in job["steps"]), "the workflow is a few lines: the action does the work"
    assert "max_deletes" in jobs["apply"]["steps"][-1]["with"]["max-deletes"]


def test_action_is_composite_and_every_reconcile_command_exists(action):
    from reconciler.cli import cli

    assert action["runs"]["using"] == "composite"
    assert {"command", "manifests", "version", "max-deletes", "branch", "artifact", "github-token"} <= set(action["inputs"])
    assert action["inputs"]["max-deletes"]["default"] == "0"
    seen = set()
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], "inputs reach scripts through env, never pasted into the shell"
        for argv in reconcile_commands(step.get("run", "")):
            if argv[1:] == ["--version"]:
                continue
            command = cli.get_command(None, argv[1])
            known = {o for p in command.params for o in getattr(p, "opts", [])}
            assert all(a in known for a in argv[2:] if a.startswith("-")), argv
            seen.add(argv[1])
    assert seen == {"validate", "fmt", "plan", "apply", "drift"}
    by_id = steps(action)
    upload = next(s for s in action["runs"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "plan.json" in upload["with"]["path"] and upload["with"]["name"] == "${{ inputs.artifact }}"
    assert '--name "$ARTIFACT" --dir reviewed' in by_id["reviewed"]["run"]
    comment = next(s for s in action["runs"]["steps"] if "reconcile-plan -->" in s.get("with", {}).get("script", ""))
    assert "updateComment" in comment["with"]["script"] and "createComment" in comment["with"]["script"]
    drift = next(s for s in action["runs"]["steps"] if "reconcile-drift -->" in s.get("with", {}).get("script", ""))
    assert all(k in drift["with"]["script"] for k in ("issues.update", "issues.create", "state: 'closed'"))


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


class Repo:
    """A bare origin, the apply runner's workspace, and pull-request checkouts. One directory's file
    state stands in for the shared PostgreSQL state every runner reaches: each step runs with it
    copied into the checkout's ``connectors/.reconcile`` and copied back after (a symlink would be
    refused: a state resolving outside the manifest directory is, since a pull request could commit one)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.origin = root / "origin.git"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.origin))
        seed = root / "seed"
        git(root, "clone", "-q", str(self.origin), str(seed))
        shutil.copytree(ROOT / "examples" / "quickstart", seed / "connectors", ignore=shutil.ignore_patterns(".reconcile"))
        git(seed, "checkout", "-q", "-b", "main")
        git(seed, "add", "-A")
        git(seed, "commit", "-qm", "connectors")
        git(seed, "push", "-q", "origin", "main")
        self.shared = root / "shared-state"
        self.shared.mkdir()
        self.work = self.clone("runner")

    def clone(self, name: str) -> Path:
        checkout = self.root / name
        git(self.root, "clone", "-q", str(self.origin), str(checkout))
        _SHARED[checkout] = self.shared
        return checkout

    def branch(self, name: str, edit) -> Path:  # noqa: ANN001
        """A pull request: a branch off main with one edit of connectors.yaml, pushed."""
        checkout = self.clone(f"pr-{name}")
        path = checkout / "connectors" / "connectors.yaml"
        path.write_text(edit(path.read_text()))
        git(checkout, "checkout", "-q", "-b", name)
        git(checkout, "commit", "-q", "--allow-empty", "-am", name)
        git(checkout, "push", "-q", "origin", name)
        return checkout

    def merge(self, name: str) -> str:
        """The PR is merged on GitHub: a merge commit (or fast-forward) on main."""
        tmp = self.root / f"merge-{name}"
        git(self.root, "clone", "-q", str(self.origin), str(tmp))
        git(tmp, "merge", "-q", "--no-edit", f"origin/{name}")
        git(tmp, "push", "-q", "origin", "main")
        sha = git(tmp, "rev-parse", "HEAD")
        shutil.rmtree(tmp)
        return sha


_SHARED: dict[Path, Path] = {}  # checkout -> the shared state directory


@pytest.fixture
def repo(tmp_path, emulator):
    emu = emulator("airweave", targets=["quickstart-docs"])
    env = {"AIRWEAVE_URL": emu.url, "AIRWEAVE_API_KEY": "test-key", "QUICKSTART_GITHUB_TOKEN": SECRET,
           "QUICKSTART_SLACK_TOKEN": SECRET + "-slack"}
    # the steps' `reconcile`: each run a process forked from the fork server, not a fresh interpreter
    # importing the CLI (three quarters of these tests' time went on that)
    bindir = reconcile_command(tmp_path / "bin").parent
    return Repo(tmp_path, {**env, "PATH": f"{bindir}:{Path(sys.executable).parent}:{os.environ['PATH']}"})


def run_step(step: dict, cwd: Path, env: dict[str, str], **inputs: str) -> tuple[int, dict[str, str], str]:
    """Run a step's script as GitHub does; returns (exit code, $GITHUB_OUTPUT values, output)."""
    output, summary = cwd / "github_output", cwd / "step_summary"
    output.write_text("")
    full = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    full.update(GIT, **env, MANIFESTS="connectors", NO_COLOR="1", GITHUB_OUTPUT=str(output),
                GITHUB_STEP_SUMMARY=str(summary))
    full.update({"BRANCH": "main", "MAX_DELETES": "0", "PLAN_URL": "https://github.example/runs/1#artifacts"}, **inputs)
    shared, local = _SHARED.get(Path(cwd)), Path(cwd) / "connectors" / ".reconcile"
    if shared is not None:
        shutil.rmtree(local, ignore_errors=True)
        shutil.copytree(shared, local)
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=120)
    if shared is not None and local.is_dir():
        shutil.rmtree(shared)
        shutil.copytree(local, shared)
    values = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return proc.returncode, values, proc.stdout + proc.stderr


def review(repo: Repo, action: dict, checkout: Path) -> Path:
    """The PR's plan job; returns its artifact (plan.json) as the apply run downloads it."""
    s = steps(action)
    assert run_step(s["validate"], checkout, repo.env)[0] == 0
    code, values, out = run_step(s["plan"], checkout, repo.env)
    assert code == 0 and values["changes"] in ("true", "false"), out
    assert SECRET not in (checkout / "plan.md").read_text() + (checkout / "plan.json").read_text() + out
    return checkout / "plan.json"


def apply_run(repo: Repo, action: dict, reviewed: Path | None, **inputs: str) -> tuple[int, dict[str, str], str]:
    """One apply run on the runner: check out main's HEAD, the reviewed plan downloaded, apply."""
    s = steps(action)
    code, _, out = run_step(s["head"], repo.work, repo.env)
    assert code == 0, out
    shutil.rmtree(repo.work / "reviewed", ignore_errors=True)
    if reviewed is not None:
        (repo.work / "reviewed").mkdir()
        shutil.copy(reviewed, repo.work / "reviewed" / "plan.json")
    return run_step(s["apply"], repo.work, repo.env, PR="7", **inputs)


def live(repo: Repo) -> dict[str, dict]:
    manifest = load(repo.work / "connectors", env=repo.env)
    provider = provider_class("airweave")(manifest.providers["airweave"])
    try:
        return {x.key: provider.read(x).fields for x in provider.list(["quickstart-docs"])}
    finally:
        provider.close()


def test_pr_plan_then_apply_of_the_reviewed_plan(action, repo):
    checkout = repo.branch("first", lambda t: t)
    plan = review(repo, action, checkout)
    assert "Plan: 2 to add" in (checkout / "plan.md").read_text()
    repo.merge("first")
    code, values, out = apply_run(repo, action, plan)
    assert code == 0 and values["applied"] == "reviewed" and "2 added" in out, out
    assert "Applied the plan reviewed in #7" in (repo.work / "step_summary").read_text()
    assert set(live(repo)) == {"quickstart-github", "quickstart-slack"}


def test_merge_merge_drift_every_merged_change_is_applied(action, repo):
    assert apply_run(repo, action, None, MAX_DELETES="0")[0] == 0  # the initial connectors exist
    # two PRs reviewed against the same main
    a = repo.branch("a", lambda t: t.replace("branch: main", "branch: release"))
    b = repo.branch("b", lambda t: t.replace("description: Quickstart repository", "description: Team repo"))
    plan_a, plan_b = review(repo, action, a), review(repo, action, b)
    repo.merge("a")
    repo.merge("b")
    # GitHub: a's apply run was pending when b's queued, so it was cancelled; only b's run executes.
    # HEAD holds both merges; b's reviewed plan lacks a's change, so it is stale: a fresh plan of HEAD
    code, values, out = apply_run(repo, action, plan_b)
    assert code == 0 and values["applied"] == "fresh", out
    summary = (repo.work / "step_summary").read_text()
    assert "is stale" in summary and '"main" -> "release"' in summary and '"Quickstart repository" -> "Team repo"' in summary
    fields = live(repo)["quickstart-github"]
    assert fields["scope"]["branch"] == "release" and fields["description"] == "Team repo"
    # a's run, had it run after b's, finds nothing left to do (its reviewed plan is stale too)
    code, values, out = apply_run(repo, action, plan_a)
    assert code == 0 and values["applied"] == "fresh" and "No changes" in out, out

    # the nightly drift check (its own concurrency group) sees main fully applied
    code, values, out = run_step(steps(action)["drift"], repo.work, repo.env)
    assert code == 0 and values["code"] == "0", out
    edit_on_platform(repo)
    code, values, out = run_step(steps(action)["drift"], repo.work, repo.env)
    assert code == 0 and values["code"] == "2" and values["changes"] == "true", out
    assert '"edited by hand" -> "Team repo"' in (repo.work / "drift.md").read_text()


def test_an_unreviewed_plan_that_deletes_needs_max_deletes(action, repo):
    assert apply_run(repo, action, None)[0] == 0
    original = (ROOT / "examples" / "quickstart" / "connectors.yaml").read_text()
    without_slack = original[: original.index("  quickstart-slack:")].rstrip("\n") + "\n"
    # a reviewed plan is applied as reviewed, deletions included: people saw them
    plan = review(repo, action, repo.branch("drop", lambda t: without_slack))
    repo.merge("drop")
    code, values, out = apply_run(repo, action, plan)
    assert code == 0 and values["applied"] == "reviewed" and "1 destroyed" in out, out
    repo.merge(repo.branch("back", lambda t: original).name.removeprefix("pr-"))  # merged without a plan
    code, values, out = apply_run(repo, action, None)
    assert code == 0 and values["applied"] == "fresh" and "1 added" in out, out

    repo.merge(repo.branch("drop-again", lambda t: without_slack).name.removeprefix("pr-"))
    code, _, out = apply_run(repo, action, None)  # no reviewed plan (direct push / expired artifact)
    assert code == 1 and "--max-deletes 0" in out, out
    assert "quickstart-slack" in live(repo)  # nothing deleted
    assert "run this workflow by hand with a larger max_deletes" in (repo.work / "step_summary").read_text()
    code, values, out = apply_run(repo, action, None, MAX_DELETES="1")  # workflow_dispatch, max_deletes: 1
    assert code == 0 and values["applied"] == "fresh" and "1 destroyed" in out, out
    assert set(live(repo)) == {"quickstart-github"}


def test_a_failing_reviewed_plan_is_not_retried_as_fresh(action, repo):
    checkout = repo.branch("broken", lambda t: t)
    plan = review(repo, action, checkout)
    repo.merge("broken")
    doc = json.loads(plan.read_text())
    doc["format_version"] = 99  # any failure other than staleness fails the job as it is
    plan.write_text(json.dumps(doc))
    code, values, out = apply_run(repo, action, plan)
    assert code == 1 and "applied" not in values and "not supported" in out, out
    assert live(repo) == {}


def edit_on_platform(repo: Repo) -> None:
    """Someone changes the connector in the platform's dashboard (a real API call)."""
    manifest = load(repo.work / "connectors", env=repo.env)
    provider = provider_class("airweave")(manifest.providers["airweave"])
    try:
        connector = manifest.connectors["quickstart-github"]
        found = next(x for x in provider.list(["quickstart-docs"]) if x.key == "quickstart-github")
        provider.update(dataclasses.replace(connector, description="edited by hand"), provider.read(found),
                        frozenset({"description"}))
    finally:
        provider.close()
