"""What a ``reconcile`` process imports: only what its command needs. Imports are most of a short
run's time (start-up is paid by every CI step); each check here is one a change could undo."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_the_cli_process_loads_httpx_without_trio_and_leaves_it_importable():
    """httpcore imports trio when it is installed (45 ms of every start); the CLI keeps it out,
    and ``import trio`` still works afterwards."""
    pytest.importorskip("trio")
    out = _run("import sys; from reconciler import _process_flags; _process_flags.AS_CLI_PROCESS = True; "
               "import reconciler.http; print('trio' in sys.modules); import trio; print(trio.__name__)")
    assert out.splitlines() == ["False", "trio"]


def test_in_process_callers_keep_httpcore_as_it_is():
    """A program that calls the library (and may run httpx under trio) gets httpcore unchanged."""
    pytest.importorskip("trio")
    out = _run("import reconciler.http, httpcore._synchronization as s; print(s.trio is not None)")
    assert out == "True"


def test_validate_loads_neither_the_emulators_nor_the_executor_nor_httpx_cli(tmp_path):
    (tmp_path / "m.yaml").write_text("version: 1\nproviders:\n  aw:\n    type: airweave\n    api_key: ${K}\n"
                                     "connectors:\n  c-one:\n    provider: aw\n    source: github\n"
                                     "    target: docs-x1\n    scope: {repo_name: org/x}\n"
                                     "    credentials:\n      personal_access_token: ${K}\n")
    # the CLI ends with os._exit (no interpreter teardown): what it loaded is printed there
    out = _run(f"import sys, os; os.environ['K'] = 'k' * 20; sys.argv = ['reconcile', 'validate', {str(tmp_path)!r}]\n"
               "from reconciler import cli\n"
               "real_exit = os._exit\n"
               "def exit_(code):\n"
               "    print(code, sorted(m for m in sys.modules if m.startswith(('reconciler.emulators', 'reconciler.apply', "
               "'rich', 'pygments', 'starlette', 'uvicorn', 'trio'))), flush=True)\n"
               "    real_exit(code)\n"
               "os._exit = exit_\n"
               "cli.main()")
    assert out.splitlines()[-1] == "0 []", out


def test_validate_does_not_load_httpx(tmp_path):
    """Validation checks urls (hosts, loopback) without the HTTP client: ``reconcile validate`` in CI
    does not pay for importing httpx."""
    (tmp_path / "m.yaml").write_text("version: 1\nproviders:\n  aw:\n    type: airweave\n    url: http://127.0.0.1:9\n"
                                     "    api_key: ${K}\nconnectors: {}\n")
    out = _run(f"import sys, os; os.environ['K'] = 'k' * 20; sys.argv = ['reconcile', 'validate', {str(tmp_path)!r}]\n"
               "from reconciler import cli\n"
               "real_exit = os._exit\n"
               "def exit_(code):\n"
               "    print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore', 'h11')), flush=True)\n"
               "    real_exit(code)\n"
               "os._exit = exit_\n"
               "cli.main()")
    assert out.splitlines()[-1] == "0 []", out


def test_plan_imports_the_engine_while_a_reader_process_parses_the_manifests(tmp_path, emulator):
    """``reconcile plan`` and ``apply`` import what talks to platforms (the engine, the executor,
    httpx) during the manifests' parse, in this process, while a reader process parses: not before."""
    body = "".join(f"  c-{i:04d}:\n    provider: aw\n    source: github\n    target: docs-x1\n"
                   f"    scope: {{repo_name: org/r{i}}}\n    credentials:\n      personal_access_token: ${{K}}\n"
                   for i in range(400))  # ~50 KB: above parallel.MIN_BYTES_BESIDE
    emu = emulator("airweave", targets=["docs-x1"])
    (tmp_path / "m.yaml").write_text(f"version: 1\nproviders:\n  aw:\n    type: airweave\n    url: {emu.url}\n"
                                     "    api_key: ${K}\nconnectors:\n" + body)
    out = _run("import sys, os; os.environ.update(K='test-key')\n"
               f"sys.argv = ['reconcile', 'plan', {str(tmp_path)!r}]\n"
               "from reconciler.manifest import parallel\n"
               "real = parallel.load_files\n"
               "heavy = ('httpx', 'reconciler.engine', 'reconciler.apply.executor')\n"
               "def load_files(files, **kw):\n"
               "    print('before', [m for m in heavy if m in sys.modules], kw.get('meanwhile') is not None, flush=True)\n"
               "    got = real(files, **kw)\n"
               "    print('after', [m for m in heavy if m in sys.modules], flush=True)\n"
               "    return got\n"
               "parallel.load_files = load_files\n"
               "from reconciler.manifest import loader; loader.load_files = load_files\n"
               "from reconciler import cli\n"
               "cli.main()")
    lines = out.splitlines()
    assert "before [] True" in lines, out
    assert "after ['httpx', 'reconciler.engine', 'reconciler.apply.executor']" in lines, out
