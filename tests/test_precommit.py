"""The pre-commit hooks: run the command each hook names, as pre-commit would, on a sample repo."""
from __future__ import annotations

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

HOOKS = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
CONFIG = yaml.safe_load((ROOT / "examples" / "pre-commit" / ".pre-commit-config.yaml").read_text())


def run_hook(hook: dict, repo: Path, changed: list[str], args: list[str] | None = None) -> subprocess.CompletedProcess:
    """What pre-commit does for a `language: python` hook: entry + args (+ the changed files that
    match `files`, when pass_filenames), in the repository root; the hook runs only if one matched."""
    matching = [f for f in changed if re.search(hook["files"], f)]
    assert matching, "pre-commit would skip the hook"
    argv = shlex.split(hook["entry"]) + (hook.get("args", []) if args is None else args)
    if hook.get("pass_filenames", True):
        argv += matching
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env["NO_COLOR"] = "1"
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "quickstart", tmp_path / "connectors",
                    ignore=shutil.ignore_patterns(".reconcile"))
    return tmp_path


def test_hook_definitions():
    validate = HOOKS["reconcile-validate"]
    assert validate["entry"] == "reconcile validate --no-env"
    assert validate["language"] == "python" and validate["pass_filenames"] is False  # validate takes one PATH
    assert validate["args"] == ["connectors"]
    assert re.search(validate["files"], "connectors/team.yml") and not re.search(validate["files"], "README.md")
    assert HOOKS["reconcile-fmt"]["entry"] == "reconcile fmt --check"


def test_example_config_uses_the_hooks():
    hooks = [h for r in CONFIG["repos"] for h in r["hooks"]]
    assert {h["id"] for h in hooks} <= set(HOOKS)
    for h in hooks:
        assert re.search(h["files"], "connectors/quickstart/connectors.yaml")
        assert not re.search(h["files"], ".github/workflows/reconcile.yml")


def test_validate_hook_passes_on_valid_manifests_without_any_secret(repo):
    result = run_hook(HOOKS["reconcile-validate"], repo, ["connectors/connectors.yaml"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 2 connectors on 1 provider")


def test_validate_hook_fails_with_file_and_line(repo):
    path = repo / "connectors" / "connectors.yaml"
    path.write_text(path.read_text().replace("${QUICKSTART_GITHUB_TOKEN}", "ghp_literal_secret_in_git"))
    result = run_hook(HOOKS["reconcile-validate"], repo, ["connectors/connectors.yaml"])
    assert result.returncode == 1
    assert re.search(r"connectors/connectors\.yaml:24:\d+: .*a literal secret is not allowed", result.stderr)
    assert "ghp_literal_secret_in_git" not in result.stdout + result.stderr


def test_fmt_hook_fails_on_unformatted_manifests(repo):
    assert run_hook(HOOKS["reconcile-fmt"], repo, ["connectors/connectors.yaml"]).returncode == 0
    path = repo / "connectors" / "connectors.yaml"
    path.write_text(path.read_text().replace("    provider: airweave\n    source: slack\n",
                                             "    source: slack\n    provider: airweave\n"))
    result = run_hook(HOOKS["reconcile-fmt"], repo, ["connectors/connectors.yaml"])
    assert result.returncode == 1 and "connectors/connectors.yaml" in result.stdout
