"""A real PostgreSQL server for the state-backend tests: one per test session, on a loopback port.

``initdb`` into a temporary directory (trust auth, no fsync: the tests are about our semantics, not
the disk), ``pg_ctl start`` on a free port with the unix socket in the same directory. PostgreSQL
refuses to run as root, so under root the cluster runs as the ``postgres`` (or ``nobody``) user.
Started once per process (several test modules share it) and stopped at exit.

Tests skip, saying why, only when no ``initdb`` binary exists at all; any other failure to start is
an error.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass

import pytest


def find_bindir() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return os.path.dirname(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bindir: str
    root: str
    port: int
    user: str = "reconcile"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database (isolates tests from each other's tables) and its DSN."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)


def _run_as() -> dict:
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


_server: PgServer | None = None


def _start() -> PgServer:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb) are not installed; .ci/run installs Debian's postgresql")
    root = tempfile.mkdtemp(prefix="reconcile-pg-")
    creds = _run_as()
    if creds:
        os.chown(root, creds["user"], creds["group"])
    data, port = os.path.join(root, "data"), _free_port()
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"}
    subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "reconcile", "--no-sync",
                    "-E", "UTF8"], check=True, capture_output=True, env=env, cwd=root, **creds)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-o", opts, "-l", os.path.join(root, "log"),
                    "-w", "-t", "30", "start"], check=True, capture_output=True, env=env, cwd=root, **creds)
    server = PgServer(bindir, root, port)

    def stop() -> None:
        subprocess.run([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True, env=env, cwd=root, **creds)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return server


def server() -> PgServer:
    global _server
    if _server is None:
        _server = _start()
    return _server


@pytest.fixture(scope="session")
def pg() -> PgServer:
    return server()
