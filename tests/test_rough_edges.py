"""Rough edges of issue 15, each through the CLI where a command is involved: messages that say
what to write instead, `-v` after the sub-command, `-h` in docs/cli.md, `emulate` saying
"listening" only once it is, and the markdown plan's markers and adopt column."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from conftest import EMU_HTTP, ROOT, run_cli
from reconciler.plan.model import Action, ActionKind, FieldChange, Plan, Unmanaged
from reconciler.plan.render import render_markdown
from test_targeting import ENV, MANIFEST


def test_validate_counts_in_the_singular(tmp_path):
    (tmp_path / "m.yaml").write_text("version: 1\nproviders:\n  aw: {type: airweave, url: \"https://x.example\"}\n"
                                     "connectors:\n  docs: {provider: aw, source: github, target: t, "
                                     "scope: {repo_name: a/b}, credentials: {personal_access_token: \"${T}\"}}\n")
    r = run_cli("validate", str(tmp_path), "--no-env")
    assert r.code == 0 and "ok: 1 connector on 1 provider\n" in r.stdout, r.output


def test_yaml_mistakes_say_what_to_write_instead(tmp_path):
    (tmp_path / "tab.yaml").write_text("version: 1\nproviders:\n  aw:\n\ttype: airweave\n")
    r = run_cli("validate", str(tmp_path / "tab.yaml"))
    assert r.code == 1 and "tab.yaml:4:1:" in r.stderr and "indent with spaces" in r.stderr, r.output
    (tmp_path / "brace.yaml").write_text("version: 1\nproviders:\n  aw: {type: airweave}\nconnectors:\n"
                                         "  c: {provider: aw, source: github, credentials: {token: ${TOK}}}\n")
    r = run_cli("validate", str(tmp_path / "brace.yaml"))
    assert r.code == 1 and "brace.yaml:5:" in r.stderr and 'write token: "${TOK}"' in r.stderr, r.output


def test_a_provider_defined_twice_is_not_sent_to_moved(tmp_path):
    provider = "providers:\n  aw: {type: airweave, url: \"https://x.example\"}\n"
    (tmp_path / "a.yaml").write_text("version: 1\n" + provider)
    (tmp_path / "b.yaml").write_text("version: 1\n" + provider)
    r = run_cli("validate", str(tmp_path), "--no-env")
    assert r.code == 1 and "provider 'aw' is defined twice" in r.stderr
    assert "moved" not in r.stderr and "keep one definition" in r.stderr


def test_verbose_after_the_subcommand(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"], fail_rate=0.5, seed=1)  # the first request fails
    (tmp_path / "m.yaml").write_text(MANIFEST.format(url=emu.url, protect=""))
    r = run_cli("plan", str(tmp_path), "-v", env=ENV)
    assert r.code == 0 and "INFO reconciler.http" in r.stderr and "retry 1" in r.stderr, r.output
    quiet = run_cli("plan", str(tmp_path), env=ENV)
    assert quiet.code == 0 and "INFO" not in quiet.stderr
    assert run_cli("state", "list", str(tmp_path), "-v").code == 0  # every command takes it


def test_cli_docs_list_the_short_help_option():
    text = (ROOT / "docs" / "cli.md").read_text()
    assert "-h, --help" in text and "\n  --help " not in text


def test_emulate_says_listening_only_once_it_is_and_a_busy_port_fails_quietly():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "emulate", "airweave", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)", line).group(1))
        # the moment it says so, it answers (no sleep, no retry)
        assert EMU_HTTP.get(f"http://127.0.0.1:{port}/sources", headers={"x-api-key": "test-key"}).status_code == 200
        started = time.monotonic()
        busy = run_cli("emulate", "airweave", "--port", str(port))
        assert busy.code == 1 and "listening" not in busy.output and "Address already in use" in busy.stderr
        assert "choose another --port" in busy.stderr and time.monotonic() - started < 30
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_markdown_plan_one_marker_per_line_and_an_adopt_column():
    rotated = FieldChange("credentials", "(sensitive)", "(sensitive)", sensitive=True, note="credentials rotated")
    plan = Plan("m", "d", {"aw": "airweave"}, [
        Action(ActionKind.UPDATE, "a", "aw", "airweave", "changed: credentials", (rotated,), "1", "t"),
        Action(ActionKind.NOOP, "b", "aw", "airweave", "adopted", (), "2", "t", adopt=True),
        Action(ActionKind.REPLACE, "c", "aw", "airweave", "source", (FieldChange("source", "x", "y", forces_replace=True),),
               "3", "t"),
    ], [Unmanaged("aw", "9", "stray")], warnings=["careful"])
    md = render_markdown(plan)
    assert not re.search(r"^([~+!-]) +\1", md, re.M), md  # never `~ ~ connector` or `! !`
    assert "~       credentials = (sensitive) -> (sensitive)   (credentials rotated)" in md
    assert "| adopt |" in md and "| aw | airweave | 0 | 1 | 1 | 0 | 1 | 0 | 1 |" in md
    assert re.search(r"^!\s+connector \"c\"", md, re.M) and re.search(r"^!\s+1 unmanaged connector", md, re.M)


def test_manifest_docs_show_forbidden_keys_and_conditional_requirements():
    text = (ROOT / "docs" / "manifest.md").read_text()
    airweave = text.split("## connector_airweave", 1)[1].split("\n## ", 1)[0]
    assert "| `syncs` | not allowed | **forbidden** | `syncs` is Nango's per-sync schedule" in airweave
    assert "- When `source` is `\"github\"`: requires `scope`; `scope` requires `repo_name`" in airweave
    assert "| any |" not in text
    assert ".reconcileignore" in text


def test_reconcileignore_keeps_other_yaml_out_of_the_manifests(tmp_path):
    (tmp_path / "connectors.yaml").write_text((ROOT / "examples" / "quickstart" / "connectors.yaml").read_text())
    (tmp_path / "docker-compose.yml").write_text("services:\n  db:\n    image: postgres:16\n")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "workflow.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / "ci" / "more.yaml").write_text("version: 1\nconnectors: {}\n")
    r = run_cli("validate", str(tmp_path), "--no-env")
    assert r.code == 1 and "docker-compose.yml:1:1: not a manifest" in r.stderr, r.output
    assert ".reconcileignore" in r.stderr and "unknown key 'services'" not in r.stderr

    (tmp_path / ".reconcileignore").write_text("# not manifests\ndocker-compose.yml\n/ci/*\n!/ci/more.yaml\n")
    r = run_cli("validate", str(tmp_path), "--no-env")
    assert r.code == 0 and r.stdout == "ok: 2 connectors on 1 provider\n", r.output
    (tmp_path / ".reconcileignore").write_text("ci/\n")  # the negated file is gone with its directory
    r = run_cli("validate", str(tmp_path), "--no-env")
    assert r.code == 1 and "ci/" not in r.stderr and "docker-compose.yml" in r.stderr


def test_import_writes_formatted_files_with_a_schema_reference_that_survives_a_commit(tmp_path, emulator):
    import test_import

    emu, path, _ids = test_import.setup(tmp_path, emulator)
    main = path / "main.yaml"
    main.write_text(main.read_text().split("\n", 1)[1])  # no $schema header to reuse
    r = run_cli("import", str(path), "--provider", "aw", env=test_import.base_env())
    assert r.code == 0, r.output
    text = (path / "imported-aw.yaml").read_text()
    assert "$schema=/" not in text and "site-packages" not in text and str(ROOT) not in text
    assert "`reconcile schema > manifest.schema.json`" in text
    check = run_cli("fmt", str(path / "imported-aw.yaml"), "--check")
    assert check.code == 0, check.output
    assert run_cli("validate", str(path), "--no-env").code == 0


def _sandbox_quickstart(tmp_path):
    root = tmp_path / "q"
    root.mkdir()
    (root / "connectors.yaml").write_text((ROOT / "examples" / "quickstart" / "connectors.yaml").read_text())
    assert run_cli("apply", str(root), "--sandbox").code == 0
    return root


def test_state_mv_then_plan_reads_as_a_rename_not_a_rotation(tmp_path):
    root = _sandbox_quickstart(tmp_path)
    manifest = root / "connectors.yaml"
    manifest.write_text(manifest.read_text().replace("quickstart-slack:", "team-slack:"))
    r = run_cli("state", "mv", str(root), "quickstart-slack", "team-slack", "--sandbox")
    assert r.code == 0 and "Moved airweave.quickstart-slack to airweave.team-slack" in r.stdout, r.output
    plan = run_cli("plan", str(root), "--sandbox")
    assert '~ name        = "quickstart-slack" -> "team-slack"' in plan.stdout, plan.output
    assert "rotated" not in plan.stdout and "in the manifests" not in plan.stdout

    # `state mv` back without touching git: the plan names the state as the one that moved
    assert run_cli("apply", str(root), "--sandbox").code == 0
    assert run_cli("state", "mv", str(root), "team-slack", "other-name", "--sandbox").code == 0
    plan = run_cli("plan", str(root), "--sandbox")
    assert "the state knows it as 'other-name'" in plan.stdout and "`state mv`" in plan.stdout, plan.output
    assert "other-name has moved to team-slack (the state entry is renamed; the live object is kept" in plan.stdout


def test_drift_waits_for_the_state_lock_only_when_asked(tmp_path):
    from reconciler.state import holder_description
    from reconciler.state.file import FileBackend

    root = _sandbox_quickstart(tmp_path)
    backend = FileBackend(root / ".reconcile" / "sandbox" / "state.json")
    with backend.lock(timeout=0, holder=holder_description()):  # an apply is running
        r = run_cli("drift", str(root), "--sandbox", "--lock-timeout", "0.2")
        assert r.code == 1 and "is locked by pid" in r.stderr, r.output
        assert run_cli("drift", str(root), "--sandbox").code == 0  # without it: no lock taken
