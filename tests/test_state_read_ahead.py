"""The state read by a manifest reader process while the manifests are checked
(``state.read_ahead``): used only when it is what a read now would give, never read from where a
state may not live, and a broken state still fails as it does when read in the parent."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.state.check import StateCorrupt
from reconciler.manifest import load, parallel
from reconciler.state import read_ahead
from reconciler.state.file import FileBackend
from reconciler.state.model import StateEntry

ENV = {"K": "k" * 24}
PROVIDERS = "version: 1\nproviders:\n  aw:\n    type: airweave\n    url: https://api.airweave.ai\n    api_key: ${K}\n"
CONNECTORS = ("version: 1\nconnectors:\n" + "".join(
    f"  conn-{i:03d}:\n    provider: aw\n    source: github\n    target: docs-x1\n"
    f"    scope: {{repo_name: org/r{i}}}\n    credentials:\n      personal_access_token: ${{K}}\n" for i in range(20)))


@pytest.fixture
def forked(monkeypatch):
    """Manifest files are read in a worker process here, whatever this machine's cores."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_WORKER", 1)
    monkeypatch.setattr(parallel, "other_threads", lambda: False)


def _manifests(root: Path, entries: int = 3) -> Path:
    (root / "providers.yaml").write_text(PROVIDERS)
    (root / "connectors.yaml").write_text(CONNECTORS)
    state = root / ".reconcile" / "state.json"
    backend = FileBackend(state)
    backend.load()
    for i in range(entries):
        backend.put(StateEntry(name=f"conn-{i:03d}", provider="aw", type="airweave", id=f"id-{i}"))
    backend.flush()
    return state


def test_the_state_read_beside_the_manifests_is_the_one_used(tmp_path, forked, monkeypatch):
    state = _manifests(tmp_path)
    expected = FileBackend(state).load()
    load(tmp_path, env=ENV, beside=read_ahead(str(tmp_path), None, parallel.Beside))

    def read_here(self):  # noqa: ANN001 - the parent must not read it again
        raise AssertionError("read again in the parent")

    monkeypatch.setattr(FileBackend, "_read_whole", read_here)
    got = FileBackend(state).load()
    assert got.entries == expected.entries and got.lineage == expected.lineage and got.serial == expected.serial


def test_a_state_changed_since_it_was_read_ahead_is_read_again(tmp_path, forked):
    state = _manifests(tmp_path)
    load(tmp_path, env=ENV, beside=read_ahead(str(tmp_path), None, parallel.Beside))
    writer = FileBackend(state)  # another run writes in between (its journal, then a compaction)
    writer.load()
    writer.put(StateEntry(name="conn-019", provider="aw", type="airweave", id="id-19"))
    got = FileBackend(state).load()
    assert "conn-019" in got.entries


def test_a_state_outside_the_manifest_directory_is_not_read_ahead(tmp_path, forked):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "state.json").write_text(json.dumps({"version": 1, "connectors": {}}))
    root = tmp_path / "m"
    root.mkdir()
    (root / "providers.yaml").write_text(PROVIDERS)
    (root / "connectors.yaml").write_text(CONNECTORS)
    os.symlink(outside, root / ".reconcile")
    beside = read_ahead(str(root), None, parallel.Beside)
    load(root, env=ENV, beside=beside)
    assert beside.result() is None  # the worker refused it, as open_backend does


def test_a_broken_state_read_ahead_fails_as_it_does_when_read_here(tmp_path, forked):
    state = _manifests(tmp_path)
    state.write_text('{"version": 1, "connectors": {"conn-000": 7}}')
    with pytest.raises(StateCorrupt) as here:
        FileBackend(state).load()
    load(tmp_path, env=ENV, beside=read_ahead(str(tmp_path), None, parallel.Beside))
    with pytest.raises(StateCorrupt) as ahead:
        FileBackend(state).load()
    assert str(ahead.value) == str(here.value)
