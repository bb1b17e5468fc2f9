"""Hostile and malformed manifests (tests/hostile/, written by make_corpus.py, plus a few made here
at run time: a huge file, very deep nesting): `reconcile validate` and `reconcile plan` each give a
clear error naming FILE:LINE, exit 1, no traceback, and make ZERO network calls (every manifest's
provider url points at a live emulator whose request counter must stay at 0).

Running 2 × 75 CLI processes would cost over a minute, so by default one driver process calls the
CLI's ``main()`` for every case (the same code path after interpreter start, exceptions and exit
codes included) and a representative handful run as real processes; ``RECONCILE_FULL_MATRIX=1``
runs every case as a real process too. A hypothesis fuzz feeds the loader random bytes and
YAML-like text: it must return a Manifest or raise ManifestError, nothing else.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from reconciler.errors import ManifestError
from reconciler.manifest import load

HOSTILE = Path(__file__).parent / "hostile"
FULL = os.environ.get("RECONCILE_FULL_MATRIX") == "1"
KEY = "hostile-api-key-00000"
BASE_ENV = {"P_KEY": KEY, "TOK": "hostile-token-11111"}
_HEADER = re.compile(rb"^# (expect|env): (.*)$")


def _headers(path: Path) -> tuple[list[str], dict[str, str]]:
    expects, env = [], {}
    for raw in path.read_bytes().splitlines()[:5]:
        m = _HEADER.match(raw)
        if m and m.group(1) == b"expect":
            expects.append(m.group(2).decode())
        elif m:
            name, value = m.group(2).decode().split("=", 1)
            env[name] = ast.literal_eval(value)
    return expects, env


def _generated(tmp: Path) -> list[Path]:
    """Cases too big to keep in git."""
    head = (HOSTILE / "syntax-unclosed-flow.yaml").read_text().split("connectors:\n")[0] + "connectors:\n"
    huge = tmp / "huge-file.yaml"  # ~6 MB: 30k connectors, the last one broken
    with huge.open("w") as fh:
        fh.write(head)
        for i in range(30000):
            fh.write(f"  c-{i}:\n    provider: aw\n    source: github\n    target: coll-one\n"
                     f"    credentials: {{personal_access_token: ${{TOK}}}}\n")
        fh.write("  broken: [\n")
    deep = tmp / "deep-nesting-100k.yaml"
    deep.write_text(head + "  x:\n    scope: " + "[" * 100000 + "]" * 100000 + "\n")
    long_line = tmp / "one-line-2mb.yaml"
    long_line.write_text("version: 1\nconnectors: {" + "a: 1, " * 100000 + "\n")
    dashes = tmp / "deep-block-sequence-60k.yaml"  # one line of "- - - ...": libyaml recursed to a SIGSEGV
    dashes.write_text(head + "  x:\n    scope:\n" + "- " * 60000 + "x\n")
    return [huge, deep, long_line, dashes]


CASES = sorted(HOSTILE.glob("*.yaml"))

_DRIVER = r"""
import contextlib, io, json, os, sys, traceback
from reconciler import cli, redact
cases = json.loads(sys.stdin.read())
results = []
for case in cases:
    saved = dict(os.environ)
    os.environ.update(case["env"])
    out, err = io.StringIO(), io.StringIO()
    code, crash = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main([case["command"], case["file"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        crash = traceback.format_exc()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        redact.clear()
    results.append({"code": code, "output": out.getvalue() + err.getvalue(), "crash": crash})
print(json.dumps(results))
"""


def _check(path: Path, command: str, code: int | None, output: str, crash: str | None = None) -> None:
    what = f"{command} {path.name}"
    assert crash is None, f"{what}: traceback\n{crash}"
    assert "Traceback" not in output, f"{what}:\n{output}"
    assert code == 1, f"{what}: exit {code}\n{output}"
    assert re.search(re.escape(path.name) + r":\d+", output), f"{what}: no FILE:LINE in\n{output}"
    expects, _ = _headers(path)
    for text in expects:
        assert text in output, f"{what}: expected {text!r} in\n{output}"
    assert KEY not in output and BASE_ENV["TOK"] not in output


@pytest.fixture
def target(emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    yield emu
    assert emu.stats["requests"].get("total", 0) == 0, f"a bad manifest reached the network: {emu.stats}"


def test_corpus_is_big_enough():
    assert len(CASES) >= 50


def test_every_case_fails_clearly_before_any_call(tmp_path, target):
    files = CASES + _generated(tmp_path)
    cases = []
    for path in files:
        _, env = _headers(path)
        for command in ("validate", "plan"):
            cases.append({"file": str(path), "command": command, "env": {**BASE_ENV, "P_URL": target.url, **env}})
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=240, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    failures = []
    for case, result in zip(cases, results):
        try:
            _check(Path(case["file"]), case["command"], result["code"], result["output"], result["crash"])
        except AssertionError as exc:
            failures.append(str(exc)[:1500])
    assert not failures, f"{len(failures)} of {len(cases)} runs misbehaved:\n\n" + "\n\n".join(failures)
    _figures(len(files), len(cases))


def _figures(inputs: int, runs: int) -> None:
    path = os.environ.get("ROBUSTNESS_FIGURES")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"suite": "hostile", "inputs": inputs, "runs": runs}) + "\n")


REAL_PROCESS = ["alias-bomb", "tag-python-object", "unicode-rtl-override", "nul-byte", "state-path-traversal",
                "env-value-with-newline"]


@pytest.mark.parametrize("path", [p for p in CASES if FULL or p.stem in REAL_PROCESS], ids=lambda p: p.stem)
def test_case_as_a_real_process(path, target):
    _, env = _headers(path)
    for command in ("validate", "plan"):
        r = run_cli(command, str(path), env={**BASE_ENV, "P_URL": target.url, **env})
        _check(path, command, r.code, r.output)


# -- fuzzing the loader --------------------------------------------------------------------------
_YAMLISH = st.lists(st.sampled_from([
    "version: 1\n", "providers:\n", "  aw:\n", "    type: airweave\n", "    url: ${P_URL}\n", "connectors:\n",
    "  c:\n", "    provider: aw\n", "    source: github\n", "    target: coll-one\n", "    scope: {a: [1, 2]}\n",
    "&a ", "*a ", "<<: *a\n", "!!python/object:x ", "? ", ": ", "- ", "[", "]", "{", "}", "'", '"', "\t", "\r\n",
    "\x00", "\ufeff", "\u202e", "${", "${X:-", "}", "#", "---\n", "...\n", "!!binary ", "0x1F", ".inf", "~",
]), max_size=40).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=400), _YAMLISH.map(str.encode), st.text(max_size=300).map(str.encode)))
def test_loader_fuzz_never_crashes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "m.yaml"
    path.write_bytes(data)
    try:
        load(path, env={"P_URL": "http://127.0.0.1:9", "X": "y"})
    except ManifestError as exc:
        for d in exc.diagnostics:
            assert d.message
            if d.location is not None:
                assert d.location.line >= 1
