"""``reconcile state list|show|rm|mv PATH ...``: inspect and repair what the reconciler owns.

Every sub-command takes the manifest PATH first: it says where the state lives (file next to the
manifests, or the ``state:`` block's backend). Only the state's own settings need their variables;
provider API keys may be unset, since these commands never call a platform. ``rm`` and ``mv`` take the
state lock like an apply does, so they never race one.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack
from typing import Any

import click
import yaml

from .. import console
from ..errors import ReconcileError
from ..fingerprint import fingerprint_key, renamed
from ..manifest import load
from ..model import Manifest
from ..plan.ownership import dotted, owned_paths, platform_owned, value_at
from ..state import StateBackend, holder_description, open_backend
from ..state.model import StateEntry

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # the schema's connector name


class _Env(dict):
    """The environment, with a marked stand-in for every variable it lacks (API keys are not needed
    here); ``missing`` records them so a state setting that reads one is reported, not used."""

    MARK = "\x00unset:"

    def __init__(self) -> None:
        import os

        super().__init__(os.environ)
        self.missing: set[str] = set()

    def placeholder(self, name: str) -> str:
        self.missing.add(name)
        return f"{self.MARK}{name}"


def _load(path: str) -> Manifest:
    env = _Env()
    manifest = load(path, env=env)
    dsn = manifest.state.dsn
    if manifest.state.backend == "postgres" and dsn is not None and _Env.MARK in dsn.reveal():
        names = sorted(n for n in env.missing if f"{_Env.MARK}{n}" in dsn.reveal())
        raise ReconcileError(f"the state's dsn reads {', '.join(names)}, which is not set; export it "
                             "(from the CI's secret store) to reach the PostgreSQL state")
    return manifest


def _state_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--state", "state_path", type=click.Path(dir_okay=False),
                      help="State file (default: from the manifests' state: block).")(fn)
    fn = click.option("--sandbox", is_flag=True, help="The --sandbox state (.reconcile/sandbox/).")(fn)
    return click.argument("path", type=click.Path(exists=True))(fn)


def _lock_option(fn):  # type: ignore[no-untyped-def]
    return click.option("--lock-timeout", type=float, default=0.0, show_default=True,
                        help="Seconds to wait for an apply holding the state lock.")(fn)


def _backend(stack: ExitStack, path: str, sandbox: bool, state_path: str | None,
             manifest: Manifest | None = None) -> StateBackend:
    backend = open_backend(manifest or _load(path), path_override=state_path, sandbox=sandbox)
    stack.callback(backend.close)
    return backend


def _entry(backend: StateBackend, name: str) -> StateEntry:
    state = backend.load()
    entry = state.entries.get(name)
    if entry is None:
        known = ", ".join(sorted(state.entries)[:20]) or "none"
        raise ReconcileError(f"{name!r} is not in the state ({backend.description}); known: {known}")
    return entry


@click.group("state")
def command() -> None:
    """Inspect and repair what the reconciler owns (no platform is called)."""


@command.command("list")
@_state_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_(path: str, sandbox: bool, state_path: str | None, fmt: str) -> None:
    """One line per owned connector: name, provider, type, live id, last applied."""
    with ExitStack() as stack:
        state = _backend(stack, path, sandbox, state_path).load()
    entries = sorted(state.entries.values(), key=lambda e: (e.provider, e.name))
    if fmt == "json":
        console.out(json.dumps([{"name": e.name, "provider": e.provider, "type": e.type, "id": e.id,
                                 "applied_at": e.applied_at} for e in entries], indent=2))
        return
    if not entries:
        console.out("The state owns no connectors.")
        return
    rows = [("NAME", "PROVIDER", "TYPE", "ID", "LAST APPLIED")]
    rows += [(e.name, e.provider, e.type, e.id, e.applied_at or "never (adopted)") for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        console.out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@command.command("show")
@_state_options
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def show(path: str, sandbox: bool, state_path: str | None, name: str, fmt: str) -> None:
    """Everything the state holds about NAME (credentials only as a keyed fingerprint).

    ``owned`` lists the fields the manifests own (as last applied); ``platform_owned`` the live values
    nobody declared (server defaults, values set in the platform's UI), as last seen: plans leave
    those alone."""
    with ExitStack() as stack:
        entry = _entry(_backend(stack, path, sandbox, state_path), name)
    doc = _show_doc(entry)
    if fmt == "json":
        console.out(json.dumps(doc, indent=2, sort_keys=True))
    else:
        console.out(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)


def _show_doc(entry: StateEntry) -> dict[str, Any]:
    doc: dict[str, Any] = entry.to_json()
    applied, seen = doc.pop("last_applied"), doc.pop("fields")
    if applied is None:
        doc["owned"] = None
        doc["ownership"] = ("not recorded yet (an entry from before field ownership, or imported): the fields the "
                            "manifests declare are owned; the next apply records them")
    else:
        paths = owned_paths(applied)
        doc["owned"] = {dotted(p): value_at(applied, p) for p in sorted(paths)}
    # unknown without a record (the manifests say what is owned) or before the live object was read
    doc["platform_owned"] = (None if applied is None or seen is None
                             else dict(sorted(platform_owned(seen, owned_paths(applied)).items())))
    doc["last_seen"] = seen  # the live projection when last seen
    return doc


@command.command("rm")
@_state_options
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@_lock_option
def rm(path: str, sandbox: bool, state_path: str | None, names: tuple[str, ...], lock_timeout: float) -> None:
    """Forget NAME: the connector stays on its platform, unmanaged (no longer deleted or updated)."""
    with ExitStack() as stack:
        backend = _backend(stack, path, sandbox, state_path)
        stack.enter_context(backend.lock(timeout=lock_timeout, holder=holder_description()))
        entries = [_entry(backend, n) for n in dict.fromkeys(names)]  # all or nothing: check before removing
        for entry in entries:
            backend.remove(entry.name)
        backend.flush()
    for entry in entries:
        console.out(f"Removed {entry.provider}.{entry.name} (id {entry.id}) from the state; "
                    "it stays on the platform, unmanaged.")


@command.command("mv")
@_state_options
@click.argument("old")
@click.argument("new")
@_lock_option
def mv(path: str, sandbox: bool, state_path: str | None, old: str, new: str, lock_timeout: float) -> None:
    """Rename an entry, to follow a connector renamed in the manifests without delete + create."""
    if not NAME.match(new):
        raise ReconcileError(f"{new!r} is not a valid connector name: use ASCII letters, digits, '-', '_' and '.', "
                             "starting with a letter or digit, at most 64 characters")
    manifest = _load(path)
    with ExitStack() as stack:
        backend = _backend(stack, path, sandbox, state_path, manifest)
        stack.enter_context(backend.lock(timeout=lock_timeout, holder=holder_description()))
        entry = _entry(backend, old)
        if new in backend.load().entries:
            raise ReconcileError(f"{new!r} is already in the state; `reconcile state rm` it first if it is stale")
        entry.name = new
        entry.fingerprint = _rekeyed(manifest, entry, old, new)
        # the new row first: a crash in between leaves a duplicate to clean up, never a lost connector
        backend.put(entry)
        backend.remove(old)
        backend.flush()
    console.out(f"Moved {entry.provider}.{old} to {entry.provider}.{new} (id {entry.id}).")


def _rekeyed(manifest: Manifest, entry: StateEntry, old: str, new: str) -> str | None:
    """Fingerprints are bound to the name: re-bind it when the manifests' credentials for NEW (their
    variables set) prove unchanged, so the rename does not read as a rotation. Otherwise the old
    fingerprint stays and the next plan re-sends the credentials once, which is harmless."""
    connector = manifest.connectors.get(new)
    provider = manifest.providers.get(entry.provider)
    if connector is None or provider is None or connector.provider != entry.provider:
        return entry.fingerprint
    return renamed(entry.fingerprint, old, new, connector.credentials, fingerprint_key(provider.api_key))
