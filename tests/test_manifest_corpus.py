"""The invalid-manifest corpus: every case under tests/manifests is one mistake, and its header says
where the loader must report it and what the message must say.

Header lines: ``# expect: LINE: substring`` (one per expected diagnostic, in that file),
``# env: NAME='value'`` (extra environment), ``# never: TEXT`` (must not appear in any message:
literal secrets). A directory is one case made of several files.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest import load

CORPUS = Path(__file__).parent / "manifests"
BASE_ENV = {"API_KEY": "test-api-key-0000", "TOKEN": "test-token-value-1111"}
_HEADER = re.compile(rb"^# (expect|env|never): (.*)$")


@dataclass
class Case:
    path: Path
    expects: list[tuple[Path, int, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    never: list[str] = field(default_factory=list)


def _read(path: Path) -> Case:
    case = Case(path, env=dict(BASE_ENV))
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    for file in files:
        for raw in file.read_bytes().splitlines():
            m = _HEADER.match(raw)
            if not m:
                continue
            kind, text = m.group(1).decode(), m.group(2).decode()
            if kind == "expect":
                line, substring = text.split(": ", 1)
                case.expects.append((file, int(line), substring))
            elif kind == "env":
                name, value = text.split("=", 1)
                case.env[name] = ast.literal_eval(value)
            else:
                case.never.append(text)
    return case


CASES = sorted(p for p in CORPUS.iterdir() if p.suffix == ".yaml" or p.is_dir())


def test_corpus_is_big_enough_and_every_case_expects_something():
    assert len(CASES) >= 30
    for path in CASES:
        assert _read(path).expects, f"{path.name} has no '# expect:' header"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_invalid_manifest_is_reported_where_and_how_expected(path: Path):
    case = _read(path)
    with pytest.raises(ManifestError) as info:
        load(path, env=case.env)
    diagnostics = info.value.diagnostics
    shown = "\n".join(str(d) for d in diagnostics)
    # one mistake per case: exactly the expected diagnostics, no noise around them
    assert len(diagnostics) == len(case.expects), shown
    for file, line, substring in case.expects:
        assert any(d.location and Path(d.location.file) == file and d.location.line == line
                   and substring in d.message for d in diagnostics), \
            f"expected {file.name}:{line}: ...{substring}...\ngot:\n{shown}"
    for text in case.never:
        assert text not in shown
