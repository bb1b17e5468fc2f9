"""A broken state is an error naming the file, the entry or line, and the repair; never a traceback,
never accepted silently (issue 13). Through the CLI: the state is read before any platform call, so
the provider's url points at a closed port and a network call would show as a connection error."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli
from pg import server
from reconciler.state.model import StateEntry

MANIFEST = """version: 1
providers:
  aw: {type: airweave, url: "http://127.0.0.1:9", api_key: "${AW_KEY}"}
connectors: {}
"""
ENV = {"AW_KEY": "test-key-broken-state"}


def entry(name: str, id: str = "11111111-1111-1111-1111-111111111111", **kw) -> dict:
    return StateEntry(name=name, provider="aw", type="airweave", id=id, key=name, **kw).to_json()


def doc(**connectors) -> str:
    return json.dumps({"version": 1, "lineage": "l", "serial": 1, "connectors": connectors})


CASES = {
    "top-level-list": ("[]", None, "the top level is a list"),
    "connectors-null": ('{"connectors": null}', None, "'connectors' is null"),
    "connectors-list": ('{"connectors": []}', None, "'connectors' is a list"),
    "unknown-version": ('{"version": 99, "connectors": {}}', None, "state version 99, newer"),
    "not-json": ('{"connectors": {', None, "it is not JSON"),
    "entry-not-object": (doc(a=[1]), None, "entry 'a' is a list"),
    "entry-lacks-id": (json.dumps({"connectors": {"a": {"name": "a", "provider": "aw", "type": "airweave"}}}), None,
                       "entry 'a' lacks 'id'"),
    "name-differs-from-key": (doc(a=entry("b")), None, "entry 'a' is filed under 'a' but names itself 'b'"),
    "same-live-id-twice": (doc(a=entry("a"), b=entry("b")), None, "entries 'a' and 'b' both own the live object"),
    "journal-list-line": (None, "[1,2]\n", "journal line 1 is a list"),
    "journal-lacks-op": (None, '{"name": "x"}\n', "journal line 1 lacks 'op'"),
    "journal-put-lacks-entry": (None, '{"op": "put"}\n', "journal line 1 (a put) has an entry that is null"),
    "journal-puts-lacks-entries": (None, '{"op": "puts", "entries": []}\n',
                                   "journal line 1 (a put of several) lacks its list of entries"),
    "journal-rm-lacks-name": (None, '{"op": "rm"}\n', "journal line 1 (an rm) lacks the name"),
    "journal-garbage-in-the-middle": (None, '{"op": "rm", "name": "x"}\nGARBAGE\n{"op": "rm", "name": "y"}\n',
                                      "journal line 2 is not JSON"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_state_is_a_clear_error(tmp_path, case):
    state, journal, expected = CASES[case]
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / ".reconcile").mkdir()
    if state is not None:
        (tmp_path / ".reconcile" / "state.json").write_text(state)
    if journal is not None:
        (tmp_path / ".reconcile" / "state.json.journal").write_text(journal)
    commands = [("plan", str(tmp_path))]
    if case in ("top-level-list", "same-live-id-twice", "journal-garbage-in-the-middle"):
        commands.append(("apply", str(tmp_path), "--yes"))  # the same load; a few suffice
    for command in commands:
        r = run_cli(*command, env=ENV)
        assert r.code == 1, r.output
        assert "Traceback" not in r.output
        assert "error: state .reconcile/state.json" in r.stderr or f"error: state {tmp_path}" in r.stderr, r.stderr
        assert expected in r.stderr, r.stderr
        # how to repair: by hand, from the backup, or with `state rm`
        assert "by hand" in r.stderr or "state rm" in r.stderr or "upgrade reconcile" in r.stderr, r.stderr
        assert "127.0.0.1:9" not in r.output  # refused before any platform call


def test_state_that_is_a_directory_or_unreadable(tmp_path):
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / ".reconcile" / "state.json").mkdir(parents=True)
    r = run_cli("plan", str(tmp_path), env=ENV)
    assert r.code == 1 and "Traceback" not in r.output
    assert "state.json: it is a directory, not a file" in r.stderr


def test_torn_last_line_is_tolerated_and_cut_before_the_next_append(tmp_path):
    """A crash mid-append leaves half a line without its newline: ignored, and cut off before the next
    write, so it never glues itself to a later record (which would make garbage in the middle)."""
    from reconciler.state.file import FileBackend

    path = tmp_path / "state.json"
    journal = tmp_path / "state.json.journal"
    journal.write_text(json.dumps({"op": "put", "entry": entry("kept")}) + "\n" + '{"op": "put", "ent')
    backend = FileBackend(path)
    assert sorted(backend.load().entries) == ["kept"]
    backend.put(StateEntry.from_json(entry("next", id="22222222-2222-2222-2222-222222222222")))
    backend.close()
    assert sorted(FileBackend(path).load().entries) == ["kept", "next"]
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_two_owners_of_one_id_can_be_repaired_with_state_rm(tmp_path):
    """The flip-flop case: plan refuses it, `state rm` (the repair it names) fixes it."""
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / ".reconcile").mkdir()
    (tmp_path / ".reconcile" / "state.json").write_text(doc(a=entry("a"), b=entry("b")))
    r = run_cli("plan", str(tmp_path), env=ENV)
    assert r.code == 1 and "`reconcile state rm PATH b`" in r.stderr, r.output
    r = run_cli("state", "rm", str(tmp_path), "b", env=ENV)
    assert r.code == 0, r.output
    r = run_cli("state", "list", str(tmp_path), env=ENV)
    assert r.code == 0 and [line.split()[0] for line in r.stdout.splitlines()[1:]] == ["a"], r.output
    # the compaction kept the previous file as the backup the messages point to
    backup = json.loads((tmp_path / ".reconcile" / "state.json.backup").read_text())
    assert sorted(backup["connectors"]) == ["a", "b"]


# -- the PostgreSQL backend's rows -------------------------------------------------------------------
def _pg_manifest(tmp_path, dsn: str) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST + "state: {backend: postgres, dsn: \"${STATE_DSN}\", name: broken}\n")


@pytest.mark.parametrize("rows, expected", [
    ({"a": [1, 2]}, "the row for 'a' is a list"),
    ({"a": {"name": "a", "provider": "aw"}}, "the row for 'a' lacks 'type'"),
    ({"a": entry("b")}, "the row for 'a' is filed under 'a' but names itself 'b'"),
    ({"a": entry("a"), "b": entry("b")}, "entries 'a' and 'b' both own the live object"),
])
def test_postgres_rows_are_checked_too(tmp_path, rows, expected):
    import psycopg
    from psycopg.types.json import Jsonb

    dsn = server().new_database()
    _pg_manifest(tmp_path, dsn)
    env = {**ENV, "STATE_DSN": dsn}
    assert run_cli("state", "list", str(tmp_path), env=env).code == 0  # creates the tables and the state row
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, value in rows.items():
            conn.execute("INSERT INTO reconcile_entries (state, name, entry) VALUES ('broken', %s, %s)",
                         (name, Jsonb(value)))
    r = run_cli("plan", str(tmp_path), env=env)
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "error: state 'broken' in PostgreSQL: " in r.stderr and expected in r.stderr, r.stderr
    assert "DELETE FROM reconcile_entries" in r.stderr or "state rm" in r.stderr
    assert dsn not in r.output


def test_a_read_only_postgres_state_stops_apply_before_any_platform_call(tmp_path):
    """A read-only database (a replica, a role without write rights) is found before the first call."""
    import psycopg

    dsn = server().new_database()
    _pg_manifest(tmp_path, dsn)
    env = {**ENV, "STATE_DSN": dsn}
    assert run_cli("state", "list", str(tmp_path), env=env).code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    r = run_cli("apply", str(tmp_path), "--yes", env=env)
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "read-only transaction" in r.stderr and "127.0.0.1:9" not in r.output, r.stderr
    assert dsn not in r.output


def test_permission_denied_is_an_error_not_a_traceback(tmp_path):
    """Root reads anything; without CAP_DAC_OVERRIDE (setpriv) it meets file modes like any user."""
    import os
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop the capability that ignores file modes")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    state = tmp_path / ".reconcile" / "state.json"
    state.parent.mkdir()
    state.write_text(doc(a=entry("a")))
    state.chmod(0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m",
                           "reconciler", "plan", str(tmp_path)], env={**env, **ENV, "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "state.json: cannot read it (Permission denied)" in proc.stderr, proc.stderr
