"""The state file's text (``state.file.document_bytes``): what the standard encoder wrote
(``json.dumps(indent=2, sort_keys=True)``), now written by orjson, with the standard encoder
where orjson refuses a value."""
from __future__ import annotations

import json

import pytest

from reconciler.state.file import FileBackend, document_bytes
from reconciler.state.model import StateEntry


def document_text(doc: dict) -> str:
    return document_bytes(doc).decode()


@pytest.mark.parametrize("doc", [
    {},
    {"connectors": {}, "serial": 3, "lineage": "abc"},
    {"b": [1, 2.5, -0.0, 0.1, True, None, [], {}], "a": {"z": "x", "y": {"q": "line\nbreak \"quoted\" \\ tab\t"}}},
    {"n": 2 ** 63 - 1, "m": -(2 ** 63)},
])
def test_ascii_documents_read_as_the_standard_encoder_wrote_them(doc):
    assert document_text(doc) == json.dumps(doc, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("doc", [
    {"name": "ü – 名前 \u2028"},  # text beyond ASCII: orjson writes it as UTF-8, not \\u escapes
    {"big": 2 ** 70},  # beyond 64 bits: the standard encoder
    {"lone": "\ud800"},  # a lone surrogate (no UTF-8 form): the standard encoder escapes it
])
def test_every_document_reads_back_as_it_was(doc):
    assert json.loads(document_text(doc)) == doc


def test_a_state_with_text_beyond_ascii_round_trips_through_the_file(tmp_path):
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    backend.put(StateEntry(name="docs-ü", provider="aw", type="airweave", id="1", source="github", target="Zielsammlung–1",
                           last_applied={"scope": {"repo_name": "名前/repo"}}))
    backend.flush()
    text = (tmp_path / "state.json").read_bytes().decode("utf-8")
    assert "docs-ü" in text and "名前/repo" in text
    entry = FileBackend(tmp_path / "state.json").load().entries["docs-ü"]
    assert entry.target == "Zielsammlung–1" and entry.last_applied == {"scope": {"repo_name": "名前/repo"}}
