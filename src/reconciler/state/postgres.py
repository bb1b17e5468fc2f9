"""PostgreSQL state: for CI runners that share nothing but a database.

Rows, not a document: ``reconcile_states`` holds one row per state (lineage, serial) and
``reconcile_entries`` one row per (state name, connector name), so every :meth:`put` and
:meth:`remove` is a single-row upsert or delete committed at once: a killed run loses nothing and
two runs never overwrite each other's rows with a stale copy of the whole state.

The lock is a session-level advisory lock on a dedicated connection. The database drops it when that
connection dies, so a runner killed mid-apply never leaves a stale lock behind. The holder
writes its description into ``reconcile_locks`` with its backend pid; a waiting runner names the
holder from that row only while that pid still holds the lock (a dead runner's row is just stale),
and falls back to the holder's ``application_name`` in ``pg_stat_activity``.

The tool creates and migrates its own tables (``reconcile_schema_version``); the DSN is a secret
(it carries a password) and never appears in a message.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import psycopg
from psycopg.types.json import Jsonb

from .. import redact
from ..errors import ReconcileError, StateLocked, StateWriteError
from . import check
from .backend import StateBackend
from .model import State, StateEntry

SCHEMA_VERSION = 1
APP_PREFIX = "reconcile "
# an arbitrary constant namespace, so our advisory locks never collide with another tool's
LOCK_NAMESPACE = 0x5EC0

# each step brings the schema from version i to i+1; steps are never edited once released
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS reconcile_states (
        name        text PRIMARY KEY,
        lineage     text NOT NULL,
        serial      bigint NOT NULL DEFAULT 0,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS reconcile_entries (
        state       text NOT NULL REFERENCES reconcile_states(name) ON DELETE CASCADE,
        name        text NOT NULL,
        entry       jsonb NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (state, name)
    );
    CREATE TABLE IF NOT EXISTS reconcile_locks (
        state       text PRIMARY KEY,
        holder      text NOT NULL,
        backend_pid integer NOT NULL,
        since       timestamptz NOT NULL DEFAULT now()
    );
    """,
)


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for the state's name (the second half of a two-int advisory key)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


class PostgresBackend(StateBackend):
    def __init__(self, dsn: str, name: str, *, connect_timeout: float = 10.0) -> None:
        self._dsn = dsn
        self.name = name
        self.description = f"PostgreSQL state {name!r}"
        self.where = f"{name!r} in PostgreSQL"
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection | None = None
        # the executor writes from several threads; one connection runs one transaction at a time
        self._mutex = threading.Lock()

    # -- connections --------------------------------------------------------------------------
    def _connect(self, application_name: str) -> psycopg.Connection:
        try:
            return psycopg.connect(self._dsn, autocommit=True, application_name=application_name[:63],
                                   connect_timeout=max(1, int(self._connect_timeout)))
        except psycopg.Error as exc:
            # psycopg's message may quote the DSN's parts; scrub it and never add the DSN ourselves
            raise ReconcileError(f"cannot connect to the {self.description}: "
                                 f"{redact.scrub(_first_line(exc)).replace(self._dsn, '(sensitive)')}") from None

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(APP_PREFIX + "state")
            self._migrate(self._conn)
            self._ensure_state(self._conn)
        return self._conn

    def _migrate(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            # serialise concurrent first runs: two runners must not both create the tables
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_NAMESPACE,))
            conn.execute("CREATE TABLE IF NOT EXISTS reconcile_schema_version (version integer NOT NULL)")
            row = conn.execute("SELECT max(version) FROM reconcile_schema_version").fetchone()
            current = (row[0] if row else None) or 0
            if current > len(MIGRATIONS):
                raise ReconcileError(f"the {self.description} uses schema version {current}, newer than this "
                                     f"reconcile understands ({len(MIGRATIONS)}); upgrade reconcile")
            for version in range(current, len(MIGRATIONS)):
                conn.execute(MIGRATIONS[version])
                conn.execute("INSERT INTO reconcile_schema_version (version) VALUES (%s)", (version + 1,))

    def _ensure_state(self, conn: psycopg.Connection) -> None:
        import uuid

        conn.execute("INSERT INTO reconcile_states (name, lineage) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                     (self.name, str(uuid.uuid4())))

    def _run(self, fn):  # type: ignore[no-untyped-def]
        try:
            with self._mutex:
                return fn(self._db())
        except psycopg.Error as exc:
            raise ReconcileError(f"{self.description}: {redact.scrub(_first_line(exc))}") from None

    # -- reading ------------------------------------------------------------------------------
    def load(self) -> State:
        def read(conn: psycopg.Connection) -> State:
            with conn.transaction():  # one snapshot: the header and the rows agree
                head = conn.execute("SELECT lineage, serial FROM reconcile_states WHERE name = %s",
                                    (self.name,)).fetchone()
                rows = conn.execute("SELECT name, entry FROM reconcile_entries WHERE state = %s ORDER BY name",
                                    (self.name,)).fetchall()
            state = State(lineage=head[0], serial=int(head[1])) if head else State()
            for name, doc in rows:
                problem = check.entry_problem(doc, key=name)
                if problem:
                    raise check.corrupt(self.where, f"the row for {name!r} {problem}",
                                        "fix its entry column, or delete the row: DELETE FROM reconcile_entries "
                                        f"WHERE state = '{_sql_text(self.name)}' AND name = '{_sql_text(name)}'")
                state.entries[name] = StateEntry.from_json(doc)
            return state

        state = self._run(read)
        if not self.lenient:
            check.unique_ids(state, self.where, how_to_drop="`reconcile state rm PATH {name}`")
        return state

    # -- writing ------------------------------------------------------------------------------
    def put(self, entry: StateEntry) -> None:
        self._run(lambda conn: self._upsert(conn, entry))

    def put_many(self, entries: list[StateEntry]) -> None:
        self._run(lambda conn: self._upsert(conn, *entries))

    def rename(self, old: str, entry: StateEntry) -> None:
        self._run(lambda conn: self._upsert(conn, entry, replacing=old))

    def _upsert(self, conn: psycopg.Connection, *entries: StateEntry, replacing: str | None = None) -> None:
        """Rows written (the old name's removed, for a rename) and the serial bumped, in one transaction."""
        with conn.transaction():
            if replacing is not None:
                conn.execute("DELETE FROM reconcile_entries WHERE state = %s AND name = %s", (self.name, replacing))
            for entry in entries:
                doc: dict[str, Any] = json.loads(redact.scrub(json.dumps(entry.to_json(), sort_keys=True)))
                conn.execute(
                    "INSERT INTO reconcile_entries (state, name, entry) VALUES (%s, %s, %s) "
                    "ON CONFLICT (state, name) DO UPDATE SET entry = EXCLUDED.entry, updated_at = now()",
                    (self.name, entry.name, Jsonb(doc)))
            conn.execute("UPDATE reconcile_states SET serial = serial + 1 WHERE name = %s", (self.name,))

    def check_writable(self) -> None:
        def probe(conn: psycopg.Connection) -> None:
            with conn.transaction():  # a write that changes nothing: a read-only role or replica fails here
                conn.execute("UPDATE reconcile_states SET serial = serial WHERE name = %s", (self.name,))

        try:
            self._run(probe)
        except ReconcileError as exc:
            raise StateWriteError(f"state {self.where}: cannot be written ({exc}); nothing was changed") from None

    def remove(self, name: str) -> None:
        def delete(conn: psycopg.Connection) -> None:
            with conn.transaction():
                conn.execute("DELETE FROM reconcile_entries WHERE state = %s AND name = %s", (self.name, name))
                conn.execute("UPDATE reconcile_states SET serial = serial + 1 WHERE name = %s", (self.name,))

        self._run(delete)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- locking ------------------------------------------------------------------------------
    @contextmanager
    def lock(self, *, timeout: float, holder: str) -> Iterator[None]:
        self._run(lambda _conn: None)  # tables exist before anyone waits on them
        conn = self._connect(APP_PREFIX + holder)
        key = (LOCK_NAMESPACE, lock_key(self.name))
        deadline = time.monotonic() + max(timeout, 0)
        try:
            while True:
                (got,) = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()  # type: ignore[misc]
                if got:
                    break
                if time.monotonic() >= deadline:
                    who = self._holder(conn, key) or "another process"
                    raise StateLocked(
                        f"the {self.description} is locked by {who}; another apply is running. "
                        "Wait for it, or pass --lock-timeout to wait longer"
                    )
                time.sleep(0.1)
            conn.execute(
                "INSERT INTO reconcile_locks (state, holder, backend_pid) VALUES (%s, %s, pg_backend_pid()) "
                "ON CONFLICT (state) DO UPDATE SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid, "
                "since = now()", (self.name, holder))
            yield
        except psycopg.Error as exc:
            raise ReconcileError(f"{self.description}: {redact.scrub(_first_line(exc))}") from None
        finally:
            conn.close()  # ends the session, which releases the lock

    def _holder(self, conn: psycopg.Connection, key: tuple[int, int]) -> str | None:
        row = conn.execute(
            "SELECT r.holder, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "LEFT JOIN reconcile_locks r ON r.state = %s AND r.backend_pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid "
            "AND l.objsubid = 2 LIMIT 1",
            (self.name, key[0] & 0xFFFFFFFF, key[1] & 0xFFFFFFFF)).fetchone()
        if not row:
            return None
        if row[0]:
            return str(row[0])
        name: str = row[1] or ""
        return (name[len(APP_PREFIX):] if name.startswith(APP_PREFIX) else name) or None

    # -- day-two operations -------------------------------------------------------------------
    def replace_all(self, state: State) -> None:
        docs = [(n, json.loads(redact.scrub(json.dumps(e.to_json(), sort_keys=True))))
                for n, e in sorted(state.entries.items())]

        def write(conn: psycopg.Connection) -> None:
            with conn.transaction():  # all or nothing: a failed push leaves the old state whole
                conn.execute("DELETE FROM reconcile_entries WHERE state = %s", (self.name,))
                for name, doc in docs:
                    conn.execute("INSERT INTO reconcile_entries (state, name, entry) VALUES (%s, %s, %s)",
                                 (self.name, name, Jsonb(doc)))
                conn.execute("UPDATE reconcile_states SET lineage = %s, serial = %s WHERE name = %s",
                             (state.lineage, state.serial, self.name))

        self._run(write)

    def force_unlock(self, lock_id: str) -> str:
        from . import check_lock_id

        key = (LOCK_NAMESPACE, lock_key(self.name))

        def holder(conn: psycopg.Connection) -> tuple[str, int] | None:
            row = conn.execute(
                "SELECT r.holder, r.backend_pid FROM reconcile_locks r JOIN pg_locks l ON l.pid = r.backend_pid "
                "WHERE r.state = %s AND l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid "
                "AND l.objid = %s::oid AND l.objsubid = 2",
                (self.name, key[0] & 0xFFFFFFFF, key[1] & 0xFFFFFFFF)).fetchone()
            return (str(row[0]), int(row[1])) if row else None

        found = self._run(holder)
        if found is None:
            raise ReconcileError(f"the {self.description} is not locked; nothing to unlock")
        who, pid = found
        check_lock_id(who, lock_id, self.description)

        def terminate(conn: psycopg.Connection) -> bool:
            # the advisory lock belongs to the holder's session: ending that session releases it
            (ok,) = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()  # type: ignore[misc]
            conn.execute("DELETE FROM reconcile_locks WHERE state = %s AND backend_pid = %s", (self.name, pid))
            return bool(ok)

        if not self._run(terminate):
            raise ReconcileError(f"could not end the session holding the {self.description} (backend pid {pid}); "
                                 "the database role needs the right to terminate it (pg_signal_backend)")
        deadline = time.monotonic() + 10  # the session ends asynchronously; return once the lock is free
        while self._run(holder) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return who


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
