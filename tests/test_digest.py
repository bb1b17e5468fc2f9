"""The manifest digest (what binds a saved plan to its manifests) is hashed a chunk of connectors at
a time; its bytes are those of one json.dumps of the whole document, so plans saved before stay current."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reconciler.engine import Engine
from reconciler.manifest import load
from reconciler.state.file import FileBackend

PROVIDERS = "version: 1\nproviders:\n  aw:\n    type: airweave\n    url: https://api.airweave.ai\n    api_key: ${K}\n"
CONNECTOR = ("  conn-{i}:\n    provider: aw\n    source: github\n    target: docs-x1\n"
             "    scope: {{repo_name: org/r{i}, branch: main}}\n"
             "    lifecycle: {{ignore_changes: [scope.branch]}}\n"
             "    credentials:\n      personal_access_token: ${{K}}\n")


def _whole_document_digest(engine: Engine) -> str:
    doc = {"providers": {n: [c.type, c.url] for n, c in sorted(engine.as_written.providers.items())},
           "connectors": {n: [c.provider, engine._desired_fields(c), list(c.lifecycle.ignore_changes),
                              c.lifecycle.prevent_destroy, c.sync_on_apply, engine._fingerprint(c)]
                          for n, c in sorted(engine.manifest.connectors.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _one_connector_engine(tmp_path: Path, emulator) -> Engine:
    emu = emulator("airweave", targets=["docs-x1"])
    body = PROVIDERS.replace("https://api.airweave.ai", emu.url) + "connectors:\n" + CONNECTOR.format(i=0)
    (tmp_path / "m.yaml").write_text(body)
    return Engine(load(tmp_path, env={"K": "test-key"}), FileBackend(tmp_path / "state.json"))


@pytest.mark.parametrize("count", [0, 1, 3])
@pytest.mark.parametrize("chunk", [1, 2, 1000])  # connectors per chunk: one, a chunk and a rest, all in one
def test_the_streamed_digest_is_the_whole_documents(tmp_path: Path, count: int, chunk: int, monkeypatch) -> None:
    monkeypatch.setattr("reconciler.engine.DIGEST_CHUNK", chunk)
    body = PROVIDERS + ("connectors:\n" + "".join(CONNECTOR.format(i=i) for i in (2, 0, 1)[:count]) if count else "")
    (tmp_path / "m.yaml").write_text(body)
    manifest = load(tmp_path, env={"K": "k" * 24})
    engine = Engine(manifest, FileBackend(tmp_path / "state.json"))
    assert engine.manifest_digest() == _whole_document_digest(engine)


def test_the_projections_beside_the_listings_give_up_the_gil_promptly(tmp_path: Path, emulator, monkeypatch) -> None:
    """Every connector's projection and fingerprint are made while the listing threads start their
    first calls: for that window the switch interval is a tenth of Python's (each GIL take of a
    starting thread would otherwise wait out 5 ms against it), and it is what it was once the plan
    is made."""
    import sys

    engine = _one_connector_engine(tmp_path, emulator)
    seen: list[float] = []
    project = Engine._project_all
    monkeypatch.setattr(Engine, "_project_all", lambda self: seen.append(sys.getswitchinterval()) or project(self))
    before = sys.getswitchinterval()
    plan, _ctx = engine.plan()
    assert seen == [min(before, 0.0005)] and sys.getswitchinterval() == before
    assert [a.kind.value for a in plan.actions] == ["create"]


def test_a_plans_digest_is_worked_out_once_asked_for_and_once_only(tmp_path: Path, emulator, monkeypatch) -> None:
    """Only a plan that is saved or printed as JSON needs the digest: `reconcile plan` and `apply`
    never encode the manifests for it."""
    engine = _one_connector_engine(tmp_path, emulator)
    calls: list[str] = []
    digest = Engine.manifest_digest
    monkeypatch.setattr(Engine, "manifest_digest", lambda self: calls.append("digest") or digest(self))
    plan, _ctx = engine.plan()
    assert calls == []
    assert plan.manifest_digest == _whole_document_digest(engine) == plan.to_json()["manifest"]["digest"]
    assert calls == ["digest"]


def test_plans_in_the_window_at_once_put_the_interval_back_as_it_was():
    """The switch interval is the process's: two plans overlapping in their window (library callers
    in threads) leave it as it was before the first, whichever ends first."""
    import sys

    from reconciler.engine import _prompt_switching

    before = sys.getswitchinterval()
    first, second = _prompt_switching(), _prompt_switching()
    first.__enter__()
    second.__enter__()
    assert sys.getswitchinterval() == min(before, 0.0005)
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == min(before, 0.0005)  # the second is still in its window
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before
