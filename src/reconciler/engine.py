"""Orchestration: manifests + adapters + state → a Plan (with the context needed to apply it).

This is the only place that does I/O while planning: it lists each provider's live connectors
(providers in parallel), reads the details the list lacks (only for objects whose version moved since
the state saw them), and hands everything to the pure planner.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator

from . import __version__
from ._gc import paused
from .errors import ReconcileError
from .fingerprint import fingerprint, fingerprint_key
from .fingerprint import renamed as renamed_fingerprint
from .http import CallCounter
from .model import Connector, LiveConnector, Manifest
from .plan import planner, safety
from .plan.model import Action, ActionKind, Plan
from .providers import Provider, provider_class
from .state import StateBackend
from .state.model import State, StateEntry

log = logging.getLogger("reconciler.engine")
_encode = json.JSONEncoder(sort_keys=True, default=str).encode
DIGEST_CHUNK = 1000


@dataclass(slots=True)
class Context:
    """What a plan was computed from; the executor needs it to act (never serialised)."""

    manifest: Manifest
    providers: dict[str, Provider]
    state: State
    keys: dict[str, bytes]  # provider name -> fingerprint key
    desired: dict[str, Connector] = field(default_factory=dict)
    live: dict[str, LiveConnector] = field(default_factory=dict)  # by connector name (matched or orphan)
    matches: dict[str, planner.Match] = field(default_factory=dict)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # state entries to rename on apply
    conflicts: list[str] = field(default_factory=list)  # live objects of a declared name that another state owns


# how often a thread computing gives up the GIL to one waiting for it, while the listings start
_START_SWITCH_INTERVAL = 0.0005
_switching = threading.Lock()
_switching_plans: list[float] = []  # the interval before the first of the plans in that window


@contextmanager
def _prompt_switching() -> Iterator[None]:
    """Computing beside threads that are starting their first calls: a listing thread takes the GIL
    several times before its request is out (a progress line, a pool's start, the connect, the
    send), and against a computing thread each take can wait out a switch interval (5 ms by
    default): 10-14 ms before the first call of a plan of 1,000 connectors. For that window, a
    tenth of it (set before the threads start: one already waiting keeps the interval it began with).
    The interval is the process's: plans in that window at once (the library, in threads) share the
    change, and the last one out puts back what was there before the first."""
    with _switching:
        if not _switching_plans:
            _switching_plans.append(sys.getswitchinterval())
            sys.setswitchinterval(min(_switching_plans[0], _START_SWITCH_INTERVAL))
        else:
            _switching_plans.append(_switching_plans[0])
    try:
        yield
    finally:
        with _switching:
            before = _switching_plans.pop()
            if not _switching_plans:
                sys.setswitchinterval(before)


class Engine:
    def __init__(self, manifest: Manifest, backend: StateBackend, *, parallelism: int = 8,
                 counter: CallCounter | None = None, timeout: float = 30.0,
                 progress: Callable[[str], None] | None = None, as_written: Manifest | None = None) -> None:
        self.manifest = manifest
        # the manifest before --sandbox pointed its urls at ephemeral ports: what a saved plan binds to
        self.as_written = as_written or manifest
        self.backend = backend
        self.parallelism = max(1, parallelism)
        self.counter = counter or CallCounter()
        self.progress = progress or (lambda _msg: None)
        self.providers: dict[str, Provider] = {}
        for name, cfg in manifest.providers.items():
            self.providers[name] = provider_class(cfg.type)(cfg, parallelism=self.parallelism, counter=self.counter,
                                                            timeout=timeout)
        self.keys = {name: fingerprint_key(cfg.api_key) for name, cfg in manifest.providers.items()}
        # per connector name (two dicts, not one keyed by tuples: a tuple per key is 11 MB at 100k)
        self._desired: dict[str, dict] = {}
        self._fingerprints: dict[str, str | None] = {}
        self._entries: dict[str, StateEntry] = {}  # the state being planned against, by name

    def close(self) -> None:
        for p in self.providers.values():
            p.close()
        self.backend.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- digest -------------------------------------------------------------------------------
    def manifest_digest(self) -> str:
        """Binds a saved plan to the manifests it came from (no secret goes in: fingerprints are keyed)."""
        # the bytes of json.dumps({"connectors": {...}, "providers": {...}}, sort_keys=True), hashed
        # DIGEST_CHUNK connectors at a time: the whole document (19 MB of text at 100,000 connectors,
        # and a list per connector) would be held at once beside the listings in flight, and one
        # encoder call per connector cost twice the encoding (28 -> 17 ms at 10,000)
        digest = hashlib.sha256(b'{"connectors": {')
        named = sorted(self.manifest.connectors.items())
        for start in range(0, len(named), DIGEST_CHUNK):
            chunk = {n: [c.provider, self._desired_fields(c), list(c.lifecycle.ignore_changes),
                         c.lifecycle.prevent_destroy, c.sync_on_apply, self._fingerprint(c)]
                     for n, c in named[start:start + DIGEST_CHUNK]}
            digest.update(((", " if start else "") + _encode(chunk)[1:-1]).encode())
        providers = {n: [c.type, c.url] for n, c in sorted(self.as_written.providers.items())}
        digest.update(f'}}, "providers": {_encode(providers)}}}'.encode())
        return digest.hexdigest()

    def _project_all(self) -> None:
        for c in self.manifest.connectors.values():
            self._desired_fields(c)
            self._fingerprint(c)

    # the digest and the pairing both need every connector's projection and fingerprint: made once a
    # plan, and where the state holds an equal one (an unchanged connector), the state's object is
    # kept and the fresh one dropped at once: at 100,000 connectors a second copy of each is 50 MB
    def _desired_fields(self, c: Connector) -> dict:
        found = self._desired.get(c.name)
        if found is None:
            found = self.providers[c.provider].desired_fields(c)
            entry = self._entries.get(c.name)
            if entry is not None:
                for same in (entry.last_applied, entry.fields):
                    if same is not None and same == found:
                        found = same
                        break
            self._desired[c.name] = found
        return found

    def _fingerprint(self, c: Connector) -> str | None:
        if c.name not in self._fingerprints:
            found = fingerprint(c.name, c.credentials, self.keys[c.provider])
            entry = self._entries.get(c.name)
            self._fingerprints[c.name] = entry.fingerprint if entry is not None and entry.fingerprint == found else found
        return self._fingerprints[c.name]

    # -- planning -----------------------------------------------------------------------------
    def plan(self) -> tuple[Plan, Context]:
        # in reconcile's own process, without the cyclic collector (see _gc): a plan builds the
        # state, every listed object, projection and action, and no cycle (gc.collect() after a plan
        # of 100,000 finds nothing), while its collections took 0.5 s of it
        with paused():
            return self._plan()

    def _plan(self) -> tuple[Plan, Context]:
        self._desired.clear()
        self._fingerprints.clear()
        state = self.backend.load()
        self._entries = state.entries
        ctx = Context(self.manifest, self.providers, state, self.keys, dict(self.manifest.connectors))
        ctx.renamed.extend(_apply_moved(self.manifest, state, self.keys))
        with ThreadPoolExecutor(max_workers=min(len(self.providers), 8) or 1) as pool:
            with _prompt_switching():
                pending = [(n, pool.submit(self._plan_provider, n, ctx)) for n in sorted(self.providers)]
                # while the listings wait on the network: every connector's projection and
                # fingerprint, which the pairing then finds made (and the digest, if it is asked for)
                self._project_all()
            results = [(n, future.result()) for n, future in pending]
        plan = Plan(self.manifest.root, self.manifest_digest, {n: c.type for n, c in self.manifest.providers.items()}, [],
                    created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), tool_version=__version__)
        for name, (actions, unmanaged, forgotten) in results:
            plan.actions.extend(actions)
            plan.unmanaged.extend(unmanaged)
            plan.forgotten.extend(forgotten)
        plan.warnings.extend(sorted(ctx.conflicts))
        known = set(self.providers)
        for entry in state.entries.values():
            if entry.provider not in known:
                plan.warnings.append(
                    f"state owns {entry.name!r} on provider {entry.provider!r}, which no manifest declares any more; "
                    "it is left alone (declare the provider again to delete it, or `reconcile state rm` it)")
        for name, match in sorted(ctx.matches.items()):
            if match.live is not None and match.live.extra.get("auth_url"):  # a browser OAuth flow not done yet
                plan.warnings.append(f"{match.connector.provider}.{name} waits for authorization: open "
                                     f"{match.live.extra['auth_url']}")
        plan.actions.sort(key=lambda a: (a.provider, a.name))
        plan.moved = list(ctx.renamed)
        _check_prevent_destroy(plan, ctx)
        return plan, ctx

    def _plan_provider(self, name: str, ctx: Context):  # type: ignore[no-untyped-def]
        provider = self.providers[name]
        cfg = self.manifest.providers[name]
        desired = [c for c in self.manifest.connectors.values() if c.provider == name]
        entries = ctx.state.for_provider(name)
        targets = sorted({c.target for c in desired if c.target} | {e.target for e in entries if e.target})
        self.progress(f"{name}: listing connectors")
        provider.state_lineage = ctx.state.lineage  # what a create's or adoption's ownership marker names
        provider.recall(entries)
        live = list(_sharing_strings(provider.list(targets), entries))
        pairing = planner.pair(desired=desired, live=live, entries=entries, identity=provider.identity,
                               desired_fields=self._desired_fields, fingerprint_key=self.keys[name],
                               fingerprint_of=self._fingerprint)
        self._complete(provider, pairing.matches)
        actions: list[Action] = []
        ctx.renamed.extend(pairing.renamed)
        defaults_of: dict[str, dict] = {}  # per source: the platform's defaults, as dotted scope paths
        for match in pairing.matches:
            ctx.matches[match.connector.name] = match
            defaults = None
            if match.live is not None:
                source = match.connector.source
                defaults = defaults_of.get(source)
                if defaults is None:
                    defaults = defaults_of[source] = {f"scope.{k}": v for k, v in provider.scope_defaults(source).items()}
            actions.append(planner.decide(match, provider=name, provider_type=cfg.type, caps=provider.capabilities,
                                          fingerprint_key=self.keys[name], defaults=defaults))
            if match.live is not None:
                ctx.live[match.connector.name] = match.live
        safety.check_targets(provider, name, pairing.matches, actions)
        ctx.conflicts.extend(safety.conflicts(name, pairing.matches, pairing.unmanaged, provider.identity,
                                              ctx.state.lineage))
        for obj, entry in pairing.orphans:
            actions.append(planner.delete_action(obj, entry))
            ctx.live[entry.name] = obj
        unmanaged = [planner.unmanaged(name, obj, ctx.state.lineage) for obj in pairing.unmanaged]
        return actions, unmanaged, [e.name for e in pairing.forgotten]

    def _complete(self, provider: Provider, matches: list[planner.Match]) -> None:
        """Fill in what the list lacks: from the state when the version has not moved, else a GET."""
        to_read = []
        for m in matches:
            live, e = m.live, m.entry
            if live is None or live.complete:
                continue
            if e is not None and e.id == live.id and e.version and e.version == live.version and e.fields is not None \
                    and not provider.needs_detail(m.connector, e.fields):
                # the adapter's fresh object, completed with the state's projection (shared: neither is
                # changed after)
                live.fields, live.complete = e.fields, True
            else:
                to_read.append(m)
        if not to_read:
            return
        # not "changed": a read is also due where the version marker misses a field (needs_detail)
        self.progress(f"{provider.config.name}: reading the detail of {len(to_read)} connector(s)")
        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            for m, full in zip(to_read, pool.map(lambda m: provider.read(m.live), to_read)):
                m.live = full


def _sharing_strings(listing: Iterable[LiveConnector], entries: list[StateEntry]) -> Iterator[LiveConnector]:
    """The listing, each object's id, key, name and version replaced by the state entry's equal
    strings as it arrives: decoded pages are let go as they come, and at 100,000 connectors each
    string held twice is ~22 MB."""
    by_id = {e.id: e for e in entries}
    for live in listing:
        e = by_id.get(live.id)
        if e is not None:
            live.id = e.id
            if live.key == e.key:
                live.key = e.key
            if live.name == e.name:
                live.name = e.name
            if live.version is not None and live.version == e.version:
                live.version = e.version
        yield live


def _apply_moved(manifest: Manifest, state: State, keys: dict[str, bytes] | None = None) -> list[tuple[str, str]]:
    """``moved:`` entries rename state entries in memory (persisted by the next apply)."""
    renamed = []
    for moved in manifest.moved:
        if moved.old in state.entries and moved.new in state.entries:
            where = f"{moved.location}: " if moved.location else ""
            raise ReconcileError(
                f"{where}moved: from {moved.old!r} to {moved.new!r}, but the state already owns {moved.new!r} "
                f"(id {state.entries[moved.new].id}); applying it would delete one of the two. Remove the moved: "
                f"entry, or `reconcile state rm` the entry you no longer want first")
        if moved.old in state.entries and moved.new not in state.entries:
            entry = state.entries.pop(moved.old)
            entry.name = moved.new
            connector = manifest.connectors.get(moved.new)
            if connector is not None and keys and entry.provider in keys:  # a rename is not a rotation
                entry.fingerprint = renamed_fingerprint(entry.fingerprint, moved.old, moved.new,
                                                        connector.credentials, keys[entry.provider])
            state.entries[moved.new] = entry
            renamed.append((moved.old, moved.new))
    return renamed


def _check_prevent_destroy(plan: Plan, ctx: Context) -> None:
    blocked = []
    for a in plan.actions:
        if a.kind is ActionKind.REPLACE and ctx.desired[a.name].lifecycle.prevent_destroy:
            blocked.append(f"{a.address} must be replaced ({a.reason})")
        elif a.kind is ActionKind.DELETE and ctx.state.entries.get(a.name) and ctx.state.entries[a.name].prevent_destroy:
            blocked.append(f"{a.address} would be deleted ({a.reason})")
    if blocked:
        raise ReconcileError(
            "lifecycle.prevent_destroy forbids this plan:\n  " + "\n  ".join(blocked)
            + "\nRemove prevent_destroy from the connector (in git) first if the destruction is intended."
        )
