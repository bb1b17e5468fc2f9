"""`reconcile validate` and `reconcile schema` as a user runs them: real processes on real files."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, run_cli

# manifests only: examples/ also holds a CI workflow and a pre-commit config
EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.yaml") if "\nversion: 1" in p.read_text())
SCHEMA_FILE = ROOT / "schemas" / "manifest.schema.json"
VALID = (ROOT / "examples" / "airweave" / "main.yaml").read_text()


def test_validate_ok_prints_counts_and_exits_zero(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(VALID)
    result = run_cli("validate", str(path), env={"AIRWEAVE_API_KEY": "k-123456", "GITHUB_TOKEN": "g-123456",
                                                 "NOTION_ACCESS_TOKEN": "n-123456"})
    assert (result.code, result.stdout) == (0, "ok: 2 connectors on 1 provider\n"), result.output


def test_validate_prints_every_error_with_file_line_col_and_no_traceback(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID.replace("shedule", "x").replace("    schedule:\n      cron: \"0 */6 * * *\"",
                                                                          "    shedule:\n      cron: \"0 */6 * * *\""))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(
        "version: 1\nconnectors:\n  other:\n    provider: airwave\n    source: notion\n    target: t-1\n"
        "    credentials:\n      token: hunter2-literal\n")
    result = run_cli("validate", "--no-env", str(tmp_path))
    assert result.code == 1
    lines = result.stderr.splitlines()
    a, b = tmp_path / "a.yaml", tmp_path / "sub" / "b.yml"
    assert f"{a}:20:5: unknown key 'shedule' (did you mean 'schedule'?)" in lines
    assert f"{b}:4:15: connector 'other' uses undefined provider 'airwave' (did you mean 'airweave'?)" in lines
    assert any(line.startswith(f"{b}:8:14: token: a literal secret is not allowed here") for line in lines)
    assert lines[-1] == "error: 3 errors in the manifests; nothing was contacted"
    assert "Traceback" not in result.output and "hunter2-literal" not in result.output


def test_unset_variable_names_the_variable_and_no_env_accepts_it(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(VALID)
    result = run_cli("validate", str(path), env={"AIRWEAVE_API_KEY": "k-123456", "GITHUB_TOKEN": "g-123456"})
    assert result.code == 1 and "environment variable NOTION_ACCESS_TOKEN is not set" in result.stderr
    assert "g-123456" not in result.output
    assert run_cli("validate", "--no-env", str(path)).code == 0


@pytest.mark.parametrize("name", ["yaml-syntax.yaml", "billion-laughs.yaml", "not-utf8.yaml", "deep-nesting.yaml"])
def test_hostile_and_broken_files_fail_cleanly(name):
    result = run_cli("validate", "--no-env", str(ROOT / "tests" / "manifests" / name), timeout=30)
    assert result.code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(str(ROOT / "tests" / "manifests" / name) + ":")


def test_missing_path_is_a_clean_error():
    result = run_cli("validate", "/nonexistent/manifests")
    assert result.code == 1 and "Traceback" not in result.output and "does not exist" in result.output


def test_schema_command_prints_the_schema_file():
    result = run_cli("schema")
    assert result.code == 0 and result.stdout == SCHEMA_FILE.read_text()
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_example_points_editors_at_the_schema_and_validates_without_env():
    assert {p.parent.name for p in EXAMPLES} >= {"airweave", "quickstart", "nango", "airstore", "aimable",
                                                 "connectors-api"}
    for path in EXAMPLES:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        assert (path.parent / first.split("$schema=", 1)[1]).resolve() == SCHEMA_FILE.resolve(), path
    for folder in sorted({p.parent for p in EXAMPLES}):  # one process per example: each a standalone desired state
        result = run_cli("validate", "--no-env", str(folder))
        assert result.code == 0 and result.stdout.startswith("ok: "), (folder, result.output)
