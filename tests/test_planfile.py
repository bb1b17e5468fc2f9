"""A saved plan names the manifests relative to the repository, so it applies from another checkout
path (the CI runner that merges is not the one that planned)."""
from __future__ import annotations

import json
import shutil
import subprocess

from conftest import run_cli
from test_targeting import ENV, MANIFEST


def test_a_saved_plan_applies_from_a_checkout_at_another_path(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-ab123"])
    first = tmp_path / "runner-1" / "repo"
    (first / "connectors").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(first)], check=True)
    (first / "connectors" / "m.yaml").write_text(MANIFEST.format(url=emu.url, protect=""))
    r = run_cli("plan", "connectors", "-o", "plan.json", env=ENV, cwd=first)
    assert r.code == 0, r.output
    options = json.loads((first / "plan.json").read_text())["options"]
    assert options["manifest_path"] == "connectors" and str(tmp_path) not in json.dumps(options)

    second = tmp_path / "runner-2" / "elsewhere"
    shutil.copytree(first, second)
    shutil.rmtree(first)  # the planning checkout is gone
    r = run_cli("apply", "../plan.json", env=ENV, cwd=second / "connectors")  # from a subdirectory, too
    assert r.code == 0 and "3 added" in r.stdout, r.output
    assert (second / "connectors" / ".reconcile" / "state.json").exists()

    other = tmp_path / "unrelated"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    r = run_cli("apply", str(second / "plan.json"), env=ENV, cwd=other)
    assert r.code == 1 and "relative to the repository root" in r.stderr and "Traceback" not in r.output
