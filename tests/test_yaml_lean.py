"""The lean YAML path gives exactly what the full builder gives, or steps aside.

``load_file`` reads a plain document without building a position for every value (that is most of
the cost, and most of the memory, at 100,000 connectors); the full builder still reads anything
with anchors, tags, merge keys, duplicate keys or odd scalars, and every position is computed from
the text the first time an error needs one. These tests hold the two paths to the same values, the
same diagnostics and the same positions.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifest import yaml_loader as Y

ROOT = Path(__file__).resolve().parent.parent
CORPORA = [ROOT / "tests" / "manifests", ROOT / "tests" / "hostile", ROOT / "examples"]


def _full(file: Path):
    """What the full builder alone makes of FILE (the lean path switched off)."""
    text = file.read_bytes().decode("utf-8-sig")
    builder = Y._Builder(str(file))
    builder.doc.data = builder.build(yaml.compose(text, Loader=Y._Loader), (), 0)
    return builder


def _all_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _all_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _all_paths(v, path + (i,))


def test_every_corpus_file_reads_the_same_on_both_paths_with_the_same_positions():
    lean_files = 0
    for corpus in CORPORA:
        for file in sorted(corpus.rglob("*.y*ml")):
            doc, problems = Y.load_file(str(file))
            if doc is None or doc.text_hash is None:
                continue  # not lean: the full builder read it
            lean_files += 1
            full = _full(file)
            assert not problems and not full.diagnostics, file  # lean only where nothing is to be said
            assert doc.data == full.doc.data, file
            for path in _all_paths(doc.data):
                for key in (False, True):
                    assert doc.location(path, key=key) == full.doc.location(path, key=key), (file, path, key)
    assert lean_files >= 20  # the examples at least are plain documents


def test_shallow_positions_need_no_second_read_and_deep_ones_take_one(tmp_path):
    file = tmp_path / "m.yaml"
    file.write_text("version: 1\nconnectors:\n  a:\n    provider: p\n    scope:\n      branch: main\n")
    doc, problems = Y.load_file(str(file))
    assert not problems and doc.text_hash is not None
    assert str(doc.location(("connectors", "a"), key=True)) == f"{file}:3:3"
    assert doc.text_hash is not None  # answered from the shallow marks
    assert str(doc.location(("connectors", "a", "scope", "branch"))) == f"{file}:6:15"
    assert doc.text_hash is None  # the file was composed once more, with every mark


def test_anything_unusual_goes_to_the_full_builder(tmp_path):
    cases = {
        "dup.yaml": "version: 1\nversion: 1\n",
        "alias.yaml": "version: 1\nx: &a {b: 1}\ny: *a\n",
        "tag.yaml": "version: !!int 1\n",
        "merge.yaml": "version: 1\nx: {<<: {a: 1}}\n",
        "nan.yaml": "version: 1\nx: .nan\n",
        "key.yaml": "version: 1\n[a]: 1\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        doc, problems = Y.load_file(str(tmp_path / name))
        assert doc is None or doc.text_hash is None, name


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
    st.sampled_from(["yes", "no", "on", "~", "0x1f", "0o17", "1_000", "2024-01-01", "1e3", ".5", "0 3 * * *", "${X}"]),
)
_key = st.text(alphabet="abcdefgh-_.1 ", min_size=1, max_size=6)
_tree = st.recursive(_scalar, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                     st.dictionaries(_key, kids, max_size=3)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(_key, _tree, min_size=1, max_size=4), flow=st.booleans())
def test_generated_documents_read_the_same_on_both_paths(tmp_path, data, flow):
    file = tmp_path / "gen.yaml"
    file.write_text(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True))
    doc, problems = Y.load_file(str(file))
    full = _full(file)
    if doc is not None and doc.text_hash is not None:
        assert not problems and not full.diagnostics
        assert doc.data == full.doc.data


def test_a_file_edited_after_reading_falls_back_to_the_shallow_positions(tmp_path):
    file = tmp_path / "m.yaml"
    file.write_text("version: 1\nconnectors:\n  a:\n    provider: p\n")
    doc, _problems = Y.load_file(str(file))
    file.write_text("# moved down\n\nversion: 1\nconnectors:\n  a:\n    provider: p\n")
    # never the new file's positions for the old file's values: the connector's own line, as read
    assert str(doc.location(("connectors", "a", "provider"))) == f"{file}:4:5"
