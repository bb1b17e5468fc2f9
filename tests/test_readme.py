"""The README stays true: its set-up command works as written, and the tour's console blocks are
the real output of running them in order (with the file edits the text asks for between them)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from conftest import ROOT, reconcile_command

README = (ROOT / "README.md").read_text()
QUICKSTART = "examples/quickstart/connectors.yaml"


def console_blocks() -> list[tuple[str, str]]:
    """(command, expected stdout) of every ```console block."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", README, re.S):
        first, _, rest = block.partition("\n")
        assert first.startswith("$ "), first
        out.append((first[2:], rest))
    return out


def test_setup_commands_are_the_ones_the_tour_starts_from():
    setup = re.search(r"## Set up\n\n```sh\n(.*?)\n```\n\n```sh\n(.*?)\n```", README, re.S)
    assert setup, "the set-up section has two sh blocks"
    install, tests = setup.group(1), setup.group(2)
    assert install == "pip install -e . && reconcile apply examples/quickstart --sandbox"
    assert tests.startswith("pip install -e '.[test]' && python3 -m pytest")
    assert (ROOT / "pyproject.toml").exists() and "test = [" in (ROOT / "pyproject.toml").read_text()
    # the tour's first block is the set-up's own apply, not a second creation
    assert console_blocks()[0][0] == install.split(" && ", 1)[1]
    intro = README.split("```console")[0].strip().rsplit("\n\n", 1)[-1]
    assert "set-up" in intro and "created" in intro, intro


def test_the_tour_is_real_output(tmp_path):
    shutil.copytree(ROOT / "examples" / "quickstart", tmp_path / "examples" / "quickstart",
                    ignore=shutil.ignore_patterns(".reconcile"))
    manifest = tmp_path / QUICKSTART
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "CI"))}
    env["NO_COLOR"] = "1"
    env["PATH"] = f"{reconcile_command(tmp_path / 'bin').parent}:{env['PATH']}"
    # the edits the prose asks for, before the block of that index
    edits = {2: ("branch: main", "branch: release"), 4: ("branch: release", "branch: main")}
    blocks = console_blocks()
    assert len(blocks) == 5
    for i, (command, expected) in enumerate(blocks):
        if i in edits:
            old, new = edits[i]
            assert f"`{old}` → `{new}`" in README or f"(`{new}`)" in README
            manifest.write_text(manifest.read_text().replace(old, new))
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.stdout == expected, f"block {i + 1} ({command}):\n{proc.stderr}"
