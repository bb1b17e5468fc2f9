"""``FileBackend.check_writable`` probes once per hold of the lock: the CLI's apply asks before the
plan and the executor asks again, under the same hold. Outside the lock, after a failed check and in
every new hold it probes again, so a library caller (``reconciler.api.apply``, whose only check is
the executor's) is never spared one."""
from __future__ import annotations

import errno
import tempfile

import pytest

from reconciler.errors import StateWriteError
from reconciler.state import file as state_file
from reconciler.state.file import FileBackend


@pytest.fixture
def probes(monkeypatch):
    made: list[str] = []
    failing: list[int] = []
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("suffix") == ".probe":
            made.append(kwargs["dir"])
            if failing:
                failing.pop()
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(state_file.tempfile, "mkstemp", mkstemp)
    return made, failing


def test_one_probe_per_hold_of_the_lock(tmp_path, probes):
    made, _ = probes
    backend = FileBackend(tmp_path / "state.json")
    with backend.lock(timeout=0, holder="test"):
        backend.check_writable()
        backend.check_writable()
        assert len(made) == 1
    with backend.lock(timeout=0, holder="test"):  # a new hold: the disk may have changed meanwhile
        backend.check_writable()
        assert len(made) == 2
    backend.check_writable()  # no lock: every call probes
    backend.check_writable()
    assert len(made) == 4


def test_a_failed_check_is_not_remembered(tmp_path, probes):
    made, failing = probes
    backend = FileBackend(tmp_path / "state.json")
    with backend.lock(timeout=0, holder="test"):
        failing.append(1)
        with pytest.raises(StateWriteError, match="the disk is full"):
            backend.check_writable()
        failing.append(1)
        with pytest.raises(StateWriteError, match="the disk is full"):
            backend.check_writable()
        backend.check_writable()
        backend.check_writable()
    assert len(made) == 3


def test_another_backend_on_the_same_state_checks_for_itself(tmp_path, probes):
    made, _ = probes
    first = FileBackend(tmp_path / "state.json")
    with first.lock(timeout=0, holder="test"):
        first.check_writable()
        FileBackend(tmp_path / "state.json").check_writable()
    assert len(made) == 2


def test_the_library_apply_still_probes_before_its_first_call(tmp_path, emulator, probes, monkeypatch):
    from reconciler import apply, load, plan

    made, failing = probes
    emu = emulator("airweave", targets=["docs-ab123"])
    path = tmp_path / "connectors.yaml"
    path.write_text(f"""\
version: 1
providers:
  aw: {{type: airweave, url: "{emu.url}", api_key: "${{AW_KEY}}"}}
connectors:
  docs:
    provider: aw
    source: github
    target: docs-ab123
    scope: {{repo_name: company/docs}}
    credentials: {{personal_access_token: "${{GH_TOKEN}}"}}
""")
    env = {"AW_KEY": "test-key", "GH_TOKEN": "ghp_once_per_hold_0001"}
    reviewed = plan(load(path, env=env))
    failing.append(1)
    with pytest.raises(StateWriteError, match="nothing was changed"):
        apply(reviewed)
    assert len(made) == 1
    assert plan(load(path, env=env)).has_changes  # nothing was created
    report = apply(plan(load(path, env=env)))
    assert not report.failed and len(made) == 2
