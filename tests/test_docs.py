"""The generated docs match their sources (schema, command tree, adapters' capabilities)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from reconciler import docs


@pytest.mark.parametrize("name", sorted(docs.GENERATORS))
def test_checked_in_docs_are_current_and_generation_is_deterministic(name):
    generated = docs.GENERATORS[name]()
    assert generated == docs.GENERATORS[name]()
    assert (ROOT / "docs" / name).read_text() == generated, \
        f"docs/{name} is out of date: run `python -m reconciler.docs` and commit the result"


def test_check_mode_exits_0_when_current():
    proc = subprocess.run([sys.executable, "-m", "reconciler.docs", "--check"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_docs_cover_every_command_provider_and_definition():
    from reconciler.cli import cli
    from reconciler.providers import TYPES

    cli_md, providers_md, manifest_md = docs.cli_md(), docs.providers_md(), docs.manifest_md()
    names = cli.list_commands(None)
    assert len(names) >= 10 and all(f"## `reconcile {name}`" in cli_md for name in names)
    assert all(f"| `{t}` |" in providers_md for t in TYPES)
    assert all(f"## {d}" in manifest_md for d in docs._schema()["$defs"])


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    for name in ("manifest.md", "cli.md", "providers.md", "state.md"):
        assert f"docs/{name}" in readme and (ROOT / "docs" / name).exists()
