"""Cron verdicts (``manifest.cron``): croniter's answer, judged by a manifest reader process for a
large manifest so that the planning process never imports croniter."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from croniter import croniter
from croniter.croniter import CroniterBadDateError

from reconciler.manifest import cron

SRC = str(Path(__file__).resolve().parent.parent / "src")
TEXTS = ["*/15 * * * *", "0 3 * * 1-5", "0 0 31 2 *", "0 0 30 2 *", "61 * * * *", "* * * * 8", "0 */6 * * *",
         "0 0 29 2 *", "@hourly", "a b c d e", "0 0 1 1 *"]


def _croniter_says(text: str) -> tuple[bool, bool]:
    if not croniter.is_valid(text):
        return False, False
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, ValueError, OverflowError):
        return True, False
    return True, True


@pytest.mark.parametrize("text", TEXTS)
def test_a_verdict_is_what_croniter_says(text):
    assert tuple(cron.verdict(text)) == _croniter_says(text)


def test_judge_texts_finds_every_five_field_cron_wherever_it_sits():
    data = [{"connectors": {"a": {"schedule": {"cron": "0 0 31 2 *"}},
                            "b": {"syncs": {"s": {"cron": "*/15 * * * *"}, "t": {"every": "1h"}}},
                            "c": {"schedule": {"cron": "@hourly"}}}},  # not five fields: the checks say so
            [{"cron": 5}, {"cron": "61 * * * *"}]]
    assert cron.judge_texts(data) == {"0 0 31 2 *": (True, False), "*/15 * * * *": (True, True),
                                      "61 * * * *": (False, False)}


def test_learn_takes_only_well_formed_verdicts_and_keeps_what_it_knew(monkeypatch):
    monkeypatch.setattr(cron, "_known", {"0 1 * * *": cron.Verdict(True, True)})
    cron.learn({"0 1 * * *": (False, False), "0 2 * * *": (True, False), 7: (True, True), "x": "yes", "y": (1,)})
    cron.learn(["not", "a", "dict"])
    assert cron._known == {"0 1 * * *": (True, True), "0 2 * * *": (True, False)}


def test_at_most_max_known_texts_are_remembered(monkeypatch):
    monkeypatch.setattr(cron, "_known", {})
    monkeypatch.setattr(cron, "MAX_KNOWN", 3)
    for minute in range(5):
        assert cron.verdict(f"{minute} * * * *").valid
    assert len(cron._known) == 3
    assert len(cron.judge_texts([{"cron": f"{m} 1 * * *"} for m in range(10)])) == 3


def _manifest(tmp_path: Path, url: str, bad: str | None = None) -> Path:
    # ~60 KB: above parallel.MIN_BYTES_BESIDE, so a reader process parses it while the plan imports
    body = "".join(f"  c-{i:04d}:\n    provider: aw\n    source: github\n    target: docs-x1\n"
                   f"    scope: {{repo_name: org/r{i}}}\n    credentials:\n      personal_access_token: ${{K}}\n"
                   f"    schedule:\n      cron: \"{bad if bad and i == 321 else f'{i % 60} */6 * * *'}\"\n"
                   for i in range(400))
    (tmp_path / "m.yaml").write_text(f"version: 1\nproviders:\n  aw:\n    type: airweave\n    url: {url}\n"
                                     "    api_key: ${K}\nconnectors:\n" + body)
    return tmp_path


def _plan_reporting_croniter(path: Path) -> subprocess.CompletedProcess:
    # the CLI ends with os._exit: whether this process imported croniter is printed there
    code = ("import sys, os\n"
            f"sys.argv = ['reconcile', 'plan', {str(path)!r}]\n"
            "from reconciler import cli\n"
            "real_exit = os._exit\n"
            "def exit_(code):\n"
            "    print('croniter imported:', 'croniter' in sys.modules, flush=True)\n"
            "    real_exit(code)\n"
            "os._exit = exit_\n"
            "cli.main()")
    env = {**os.environ, "K": "test-key", "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_a_large_plan_takes_the_readers_verdicts_and_never_imports_croniter(tmp_path, emulator):
    emu = emulator("airweave", targets=["docs-x1"])
    r = _plan_reporting_croniter(_manifest(tmp_path, emu.url))
    assert r.returncode == 0, r.stderr
    assert "Plan: 400 to add" in r.stdout
    assert r.stdout.splitlines()[-1] == "croniter imported: False"


def test_a_cron_that_never_fires_is_refused_on_the_readers_verdict(tmp_path):
    r = _plan_reporting_croniter(_manifest(tmp_path, "http://127.0.0.1:9", bad="0 0 31 2 *"))
    assert r.returncode == 1
    assert "m.yaml:" in r.stderr and "cron '0 0 31 2 *' never fires" in r.stderr, r.stderr
    assert "nothing was contacted" in r.stderr
    assert r.stdout.splitlines()[-1] == "croniter imported: False"
