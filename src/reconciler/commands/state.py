"""``reconcile state list|show|rm|mv|pull|push|force-unlock PATH ...``: inspect and repair what the
reconciler owns.

Every sub-command takes the manifest PATH first: it says where the state lives (file next to the
manifests, or the ``state:`` block's backend). Only the state's own settings need their variables;
provider urls and API keys may be unset, since these commands never call a platform. ``rm``, ``mv``
and ``push`` take the state lock like an apply does, so they never race one.
"""
from __future__ import annotations

import json
import os
import re
import sys
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import click
import yaml

from .. import console
from ..errors import ReconcileError
from ..fingerprint import fingerprint_key, renamed
from ..manifest import load
from ..manifest.variables import parse, resolve
from ..manifest.yaml_loader import load_file
from ..model import Manifest, Secret, StateConfig
from ..plan.ownership import dotted, owned_paths, platform_owned, value_at
from ..state import StateBackend, check, holder_description, open_backend
from ..state.model import STATE_VERSION, State, StateEntry

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # the schema's connector name


def _load(path: str) -> Manifest:
    """The manifests, with only the ``state:`` block's variables read: these commands call no
    platform, so provider urls and API keys may be unset (nothing stands in for them)."""
    manifest = load(path, resolve_env=False)
    for file in manifest.files:
        doc, _problems = load_file(file)
        block = doc.data.get("state") if doc is not None and isinstance(doc.data, dict) else None
        if isinstance(block, dict):
            return replace(manifest, state=_resolved_state(block, doc))
    return manifest


def _resolved_state(block: dict[str, Any], doc: Any) -> StateConfig:
    values: dict[str, str | None] = {}
    for key in ("backend", "path", "dsn", "name"):
        raw = block.get(key)
        if not isinstance(raw, str):
            values[key] = raw
            continue
        result = resolve(parse(raw), os.environ, secret=key == "dsn")
        if result.errors:
            where = doc.location(("state", key))
            hint = "export it (from the CI's secret store) to reach the PostgreSQL state" if key == "dsn" else "export it"
            raise ReconcileError(f"{where}: the state's {key} reads {', '.join(result.unresolved)}, which is not set; "
                                 f"{hint}")
        values[key] = result.value
    dsn = values.get("dsn")
    return StateConfig(backend=values.get("backend") or "file", path=values.get("path"),
                       dsn=Secret(dsn) if dsn else None, name=values.get("name"))


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
    backend.lenient = True  # these commands are how a user repairs what plan and apply refuse
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

    `owned` lists the fields the manifests own (as last applied); `platform_owned` the live values
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
                             else dict(sorted(platform_owned(seen, applied).items())))
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
        entry.fingerprint = _rekeyed(path, sandbox, entry, old, new)
        backend.rename(old, entry)  # one atomic write: never under both names, never under neither
        backend.flush()
    console.out(f"Moved {entry.provider}.{old} to {entry.provider}.{new} (id {entry.id}).")


def _rekeyed(path: str, sandbox: bool, entry: StateEntry, old: str, new: str) -> str | None:
    """Fingerprints are bound to the name: re-bind it when the manifests' credentials for NEW (their
    variables set) prove unchanged, so the rename does not read as a rotation. Otherwise the old
    fingerprint stays and the next plan re-sends the credentials once, which is harmless."""
    from ..errors import ManifestError
    from ._common import load_manifest

    try:
        manifest = load_manifest(path, sandbox=sandbox, read_state_ahead=False)  # the credentials' variables, when this shell has them
    except ManifestError:
        return entry.fingerprint
    connector = manifest.connectors.get(new)
    provider = manifest.providers.get(entry.provider)
    if connector is None or provider is None or connector.provider != entry.provider:
        return entry.fingerprint
    return renamed(entry.fingerprint, old, new, connector.credentials, fingerprint_key(provider.api_key))


@command.command("pull")
@_state_options
def pull(path: str, sandbox: bool, state_path: str | None) -> None:
    """Print the whole state as JSON (for a backup, or to edit and `state push` back)."""
    with ExitStack() as stack:
        state = _backend(stack, path, sandbox, state_path).load()
    console.out(json.dumps(state.to_json(), indent=2, sort_keys=True))


@command.command("push")
@_state_options
@click.argument("file", type=click.File("r"))
@click.option("--force", is_flag=True, help="Push although the lineage differs or the state moved since FILE was pulled.")
@_lock_option
def push(path: str, sandbox: bool, state_path: str | None, file: Any, force: bool, lock_timeout: float) -> None:
    """Replace the state with FILE (JSON from `state pull`; `-` reads stdin).

    Like Terraform, refused unless FILE has the state's lineage and a serial at least the state's
    (it was pulled from this state, and nothing was applied since); --force overrides both.
    """
    pushed = _parse_state(file.read(), file.name)
    with ExitStack() as stack:
        backend = _backend(stack, path, sandbox, state_path)
        stack.enter_context(backend.lock(timeout=lock_timeout, holder=holder_description()))
        current = backend.load()
        exists = bool(current.entries) or current.serial > 0
        if exists and not force:
            if pushed.lineage != current.lineage:
                raise ReconcileError(f"{file.name} has lineage {pushed.lineage}, but {backend.description} has "
                                     f"{current.lineage}: it comes from another state. Pass --force to overwrite "
                                     "anyway; nothing was changed")
            if pushed.serial < current.serial:
                raise ReconcileError(f"{file.name} has serial {pushed.serial}, older than {backend.description} "
                                     f"(serial {current.serial}): the state moved since it was pulled. Pull again "
                                     "and redo the edit, or pass --force; nothing was changed")
        pushed.serial = max(pushed.serial, current.serial) + 1
        backend.replace_all(pushed)
    n = len(pushed.entries)
    console.out(f"Pushed {n} connector{'s' if n != 1 else ''} to {backend.description} (serial {pushed.serial}).")


def _parse_state(text: str, name: str) -> State:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ReconcileError(f"{name}: not JSON ({exc}); write the output of `reconcile state pull`") from None
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION or not isinstance(doc.get("connectors"), dict):
        raise ReconcileError(f"{name}: not a version {STATE_VERSION} state (expected the output of "
                             "`reconcile state pull`: version, lineage, serial, connectors)")
    if not isinstance(doc.get("lineage"), str) or not isinstance(doc.get("serial"), int) or doc["serial"] < 0:
        raise ReconcileError(f"{name}: lineage (a string) and serial (a number >= 0) are required")
    entries = {}
    for key, body in doc["connectors"].items():
        # the checks a state file gets when it is loaded: a pushed entry of the wrong shape would
        # otherwise be written, and every later command would refuse the state (or crash on it)
        problem = check.entry_problem({**body, "name": key} if isinstance(body, dict) else body)
        if problem or not NAME.match(key):
            raise ReconcileError(f"{name}: connector {key!r} is not a valid entry ({problem or 'not a valid name'}; "
                                 "each needs provider, type and id strings); nothing was changed")
        entry = StateEntry.from_json({**body, "name": key})
        entries[key] = entry
    return State(entries=entries, lineage=doc["lineage"], serial=doc["serial"])


@command.command("force-unlock")
@_state_options
@click.argument("lock_id", metavar="LOCK_ID")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def force_unlock(path: str, sandbox: bool, state_path: str | None, lock_id: str, yes: bool) -> None:
    """Release the lock a stuck run holds. LOCK_ID is in the "locked by" message.

    Only for a run that is hung or whose machine is gone: a run that is still applying keeps
    writing the state. A run that dies releases its lock by itself.
    """
    with ExitStack() as stack:
        backend = _backend(stack, path, sandbox, state_path)
        if not yes:
            if not sys.stdin.isatty():
                raise ReconcileError("force-unlock needs --yes when not run interactively; nothing was unlocked")
            click.confirm(f"Break the lock {lock_id} on {backend.description}? Only if its run is stuck",
                          abort=True)
        holder = backend.force_unlock(lock_id)
    console.out(f"Unlocked {backend.description} (was held by {holder}).")
