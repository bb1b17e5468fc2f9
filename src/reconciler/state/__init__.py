"""Where the reconciler remembers what it owns: a JSON file by default, PostgreSQL for shared CI."""
from __future__ import annotations

import getpass
import os
import re
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..errors import ReconcileError
from ..model import Manifest
from .backend import StateBackend
from .file import FileBackend
from .file import read_ahead as file_read_ahead
from .model import State, StateEntry


def workdir(manifest_root: str) -> Path:
    """``.reconcile/`` next to the manifests (beside the file, or inside the directory)."""
    root = Path(manifest_root)
    return (root if root.is_dir() else root.parent) / ".reconcile"


def open_backend(manifest: Manifest, *, path_override: str | None = None, sandbox: bool = False) -> StateBackend:
    cfg = manifest.state
    base = Path(manifest.root) if Path(manifest.root).is_dir() else Path(manifest.root).parent
    if sandbox:
        return FileBackend(sandbox_dir(manifest.root) / "state.json")
    if path_override:  # chosen on the command line (by the CI), not by the manifests
        return FileBackend(path_override)
    if cfg.backend == "postgres":
        from .postgres import PostgresBackend  # imported lazily: psycopg is only needed here

        assert cfg.dsn is not None
        return PostgresBackend(cfg.dsn.reveal(), name=cfg.name or state_name(manifest.root))
    if cfg.path:
        return FileBackend(_inside(base / cfg.path, base))
    return FileBackend(_inside(workdir(manifest.root) / "state.json", base))


def read_ahead(manifest_root: str, path_override: str | None, beside_factory: Callable[[Callable[[], object]], Any]) -> Any:
    """Have the state a plan of these manifests will most likely use (``--state``, else the default
    file) read beside the manifest checks (``state.file.read_ahead``); a backend the manifests
    choose otherwise reads its own. The default file is read only where open_backend would accept it."""
    base = Path(manifest_root) if Path(manifest_root).is_dir() else Path(manifest_root).parent
    path = Path(path_override) if path_override else workdir(manifest_root) / "state.json"

    def guard() -> None:
        if not path_override:
            _inside(path, base)

    return file_read_ahead(path, beside_factory, guard)


def sandbox_dir(manifest_root: str) -> Path:
    """``.reconcile/sandbox`` of these manifests, refused (before an emulator writes its data there)
    when it resolves outside the manifest directory, like a state path."""
    base = Path(manifest_root) if Path(manifest_root).is_dir() else Path(manifest_root).parent
    return _inside(workdir(manifest_root) / "sandbox" / "state.json", base).parent


def _inside(path: Path, base: Path) -> Path:
    """PATH, refused when it (its directory, the journal or the lock beside it) resolves outside BASE.

    A pull request can commit ``.reconcile`` (or ``state.json.journal``) as a symlink to anywhere on
    the CI runner; apply would then write the state, and fold the journal, there.
    """
    root = base.resolve()
    for candidate in (path, path.with_name(path.name + ".journal"), path.with_name("state.lock")):
        real = candidate.resolve()
        if real != root and root not in real.parents:
            link = next((p for p in [candidate, *candidate.parents] if p.is_symlink()), candidate)
            raise ReconcileError(
                f"state {candidate}: resolves to {real}, outside the manifest directory {root} (through the symlink "
                f"{link}); remove the symlink (state lives in a real directory beside the manifests), or pass "
                "--state PATH")
    return path


def state_name(manifest_root: str) -> str:
    """The default name of a shared state: the manifest directory's name (a file's parent's)."""
    root = Path(manifest_root).resolve()
    return (root if root.is_dir() else root.parent).name


def holder_description() -> str:
    """Who holds a lock, for messages; its ``lock id`` is what ``reconcile state force-unlock`` takes."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"pid {os.getpid()} ({user}@{socket.gethostname()}, since {now}, lock id {uuid.uuid4().hex[:12]})"


LOCK_ID = re.compile(r"lock id ([0-9a-f]{12})")


def check_lock_id(holder: str, lock_id: str, description: str) -> None:
    """Refuse to break a lock unless ``lock_id`` is the one its holder wrote (Terraform's safeguard:
    the id comes from the "locked by" message of the run that is stuck)."""
    found = LOCK_ID.search(holder)
    if found is None or found.group(1) != lock_id.strip().lower():
        raise ReconcileError(f"lock id {lock_id!r} does not match the lock on {description}, held by {holder}; "
                             "nothing was unlocked (copy the id from the \"locked by\" message)")


__all__ = ["FileBackend", "State", "StateBackend", "StateEntry", "check_lock_id", "holder_description",
           "open_backend", "workdir"]
