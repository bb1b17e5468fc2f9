"""`reconcile state rm` then `reconcile import`: a connector this state forgot can be imported back.

Nango marks what the reconciler manages (the connection tag ``managed-by: connector-reconciler``);
import skipped every marked connection as "another state manages it", so one forgotten by
``state rm`` (which leaves it live, tag included) could never come back. The marker now names the
state's lineage (``managed-by-state``): a marker of this lineage on a connection in no entry means
"forgotten", importable; one of another lineage (or none) is still skipped unless
``--include-marked`` says no state manages it any more (the state that marked it was lost). Airweave
keeps ownership in the state alone: the same round trip must hold there too.
"""
from __future__ import annotations

import json
import re

import pytest

from conftest import EMU_HTTP, run_cli
from reconciler.state.file import FileBackend
from test_e2e_platforms import API_KEY, PLATFORMS, TOKEN_A, _var, write_manifest


def _setup(type_name: str, emulator, root):
    platform = PLATFORMS[type_name]
    emu = emulator(type_name, targets=platform.emu_targets, api_key=API_KEY)
    env = {f"{_var(type_name)}_URL": emu.url, "API_KEY": API_KEY, "TOK": TOKEN_A}

    def manifest(names: list[str]) -> None:
        write_manifest(root / "connectors.yaml", {type_name: type_name}, {n: platform.connector(n) for n in names})

    return emu, env, manifest


def _imported_env(root, env: dict[str, str], name: str = "imported") -> dict[str, str]:
    text = "".join(p.read_text() for p in sorted(root.glob("imported-*.yaml")))
    variables = sorted(set(re.findall(r"\$\{(IMPORTED_[A-Z0-9_]+)\}", text)))
    return env | {v: f"{name}-value-{i}-of-secret" for i, v in enumerate(variables)}


@pytest.mark.parametrize("type_name", ["nango", "airweave"])
def test_a_connector_forgotten_by_state_rm_imports_back_and_plans_nothing(type_name, emulator, tmp_path):
    root = tmp_path / "m"
    emu, env, manifest = _setup(type_name, emulator, root)
    manifest(["conn-alpha", "conn-bravo"])
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    state_file = root / ".reconcile" / "state.json"
    alpha_id = FileBackend(state_file).load().entries["conn-alpha"].id

    r = run_cli("state", "rm", str(root), "conn-alpha", env=env)
    assert r.code == 0 and "stays on the platform, unmanaged" in r.stdout, r.output
    manifest(["conn-bravo"])  # forgotten, and out of git: nothing declares or owns it now
    plan = json.loads(run_cli("plan", str(root), "--format", "json", env=env).stdout)
    assert [(u["id"], u["marked"]) for u in plan["unmanaged"]] == [(alpha_id, False)]  # not "another state?"

    r = run_cli("import", str(root), "--provider", type_name, env=env)
    assert r.code == 0 and "Traceback" not in r.output, r.output
    assert "skipped" not in r.stderr and f"conn-alpha  (live id {alpha_id})" in r.stdout, r.output
    assert "Adopted into the state" in r.stdout
    entries = FileBackend(state_file).load().entries
    assert sorted(entries) == ["conn-alpha", "conn-bravo"] and entries["conn-alpha"].id == alpha_id

    r = run_cli("plan", str(root), "--detailed-exitcode", env=_imported_env(root, env))
    assert r.code == 0, r.output
    assert "No changes." in r.stdout and "unmanaged" not in r.stdout and "conflict" not in r.output, r.output


def test_a_connection_another_state_marked_is_still_skipped_unless_included(emulator, tmp_path):
    """The marker's protection stays: a second state's import does not take the first state's
    connection; --include-marked does (the first state is gone), and its next update re-marks it."""
    first, second = tmp_path / "first", tmp_path / "second"
    emu, env, manifest_first = _setup("nango", emulator, first)
    manifest_first(["conn-alpha"])
    assert run_cli("apply", str(first), "--yes", env=env).code == 0
    first_lineage = FileBackend(first / ".reconcile" / "state.json").load().lineage
    write_manifest(second / "connectors.yaml", {"nango": "nango"}, {})

    r = run_cli("import", str(second), "--provider", "nango", env=env)
    assert r.code == 0 and "Traceback" not in r.output, r.output
    assert "skipped conn-alpha (id github-prod/conn-alpha): its ownership marker says another state manages it" \
           in r.stderr and "--include-marked" in r.stderr, r.output
    assert "Nothing to import" in r.stdout and not list(second.glob("imported-*.yaml"))
    assert not (second / ".reconcile" / "state.json").exists() or \
        not FileBackend(second / ".reconcile" / "state.json").load().entries

    (first / ".reconcile" / "state.json").unlink()  # the first state is lost
    r = run_cli("import", str(second), "--provider", "nango", "--include-marked", env=env)
    assert r.code == 0 and "conn-alpha  (live id github-prod/conn-alpha)" in r.stdout, r.output
    state = FileBackend(second / ".reconcile" / "state.json").load()
    assert list(state.entries) == ["conn-alpha"] and state.lineage != first_lineage
    imported = _imported_env(second, env)
    assert run_cli("plan", str(second), "--detailed-exitcode", env=imported).code == 0

    text = (second / "imported-nango.yaml").read_text().replace("team: conn-alpha", "team: changed")
    (second / "imported-nango.yaml").write_text(text)
    assert run_cli("apply", str(second), "--yes", env=imported).code == 0
    tags = emu_tags(emu, "conn-alpha")
    assert tags == {"managed-by": "connector-reconciler", "managed-by-state": state.lineage}


def test_state_rm_of_a_still_declared_connection_adopts_without_a_conflict(emulator, tmp_path):
    """Forgotten but still in git: import says the next apply adopts it, and the plan's adoption warns
    of no other state (the marker names this one)."""
    root = tmp_path / "m"
    emu, env, manifest = _setup("nango", emulator, root)
    manifest(["conn-alpha"])
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    assert run_cli("state", "rm", str(root), "conn-alpha", env=env).code == 0
    r = run_cli("import", str(root), "--provider", "nango", env=env)
    assert r.code == 0, r.output
    assert "conn-alpha is declared in a manifest but not in the state: the next apply adopts it" in r.stderr, r.output
    r = run_cli("plan", str(root), env=env)
    assert "1 to adopt" in r.stdout and "conflict" not in r.output, r.output
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    assert run_cli("plan", str(root), "--detailed-exitcode", env=env).code == 0


def emu_tags(emu, connection_id: str) -> dict[str, str]:
    r = EMU_HTTP.get(f"{emu.url}/connections", params={"limit": 100}, headers={"Authorization": f"Bearer {API_KEY}"})
    r.raise_for_status()
    return next(c["tags"] for c in r.json()["connections"] if c["connection_id"] == connection_id)
