"""Carry out a plan: the create, update, replace and delete calls, in parallel, state after each.

Guarantees (DESIGN.md, "Apply guarantees"):
- the state is written after every successful call, durably, so a killed run loses nothing;
- a create whose outcome is unknown (timeout, dropped connection, crash) is looked up before it is
  tried again, and platforms that take an idempotency key get one that is stable for the same
  desired connector: no duplicates;
- one failing action does not stop the others; the report says exactly what succeeded and what not;
- nothing starts before the state is known writable, and nothing more starts once a state write
  failed (the platform would change without the state knowing);
- a replace creates before it destroys where the platform allows, so a failed create loses nothing;
- the first SIGINT/SIGTERM starts nothing new and lets the calls in flight finish; a second exits at
  once, never in the middle of a state write (docs/state.md, "Replaces and interruptions").
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterator

from .. import redact
from ..engine import Context
from ..errors import OutcomeUnknown, ProviderError, ReconcileError, StateWriteError
from ..model import Connector, LiveConnector
from ..plan import planner
from ..plan.model import Action, ActionKind, Plan
from ..providers import Provider
from ..providers.base import NothingToSync
from ..state import StateBackend
from ..state.model import StateEntry

log = logging.getLogger("reconciler.apply")

CREATE_ATTEMPTS = 4
INTERRUPT_GRACE = 60.0  # seconds the calls in flight get after a first Ctrl-C


class _ReplaceFailed(ReconcileError):
    def __init__(self, message: str, destroyed: bool) -> None:
        super().__init__(message)
        self.destroyed = destroyed


def _create_first(provider: Provider, connector: Connector) -> bool:
    chosen = connector.lifecycle.create_before_destroy
    return provider.capabilities.create_before_destroy if chosen is None else chosen


@dataclass(slots=True)
class Outcome:
    action: Action
    ok: bool
    error: str | None = None
    live_id: str | None = None
    sync_job: str | None = None
    seconds: float = 0.0
    destroyed: bool = False  # a replace whose original was deleted (even if its re-create then failed)


@dataclass(slots=True)
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    state_only: int = 0  # adoptions, renames, forgotten entries: recorded without an API call
    planned: int = 0  # API actions the plan held
    interrupted: bool = False  # SIGINT/SIGTERM: the actions not started were left for the next apply
    halted: str | None = None  # the state could not be written: why the run stopped starting actions

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, kind: ActionKind) -> int:
        return sum(1 for o in self.outcomes if o.ok and o.action.kind is kind)

    @property
    def destroyed(self) -> int:
        """Connectors that are gone: deletes, and replaces whose re-create failed after the delete."""
        return self.count(ActionKind.DELETE) + len(self.lost)

    @property
    def lost(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and o.destroyed and o.action.kind is ActionKind.REPLACE]

    @property
    def done(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)


def idempotency_key(provider: str, connector: Connector, desired: dict, fp: str | None, nonce: str = "") -> str:
    blob = json.dumps([provider, connector.name, desired, fp] + ([nonce] if nonce else []), sort_keys=True, default=str)
    return "rcn-" + hashlib.sha256(blob.encode()).hexdigest()[:40]


def deposed_name(name: str, live_id: str) -> str:
    """The state entry of an original a create-before-destroy replace has not deleted yet: no manifest
    name can contain ``~``, so it never matches a connector and the next plan deletes it."""
    return f"{name}~deposed-{live_id}"


_SKIPPED = object()


class _Writes:
    """The state writes in flight. Any number at once: the backend orders them and writers share its
    fsyncs (a lock here made every worker queue behind one fsync each). :meth:`stop` lets no new one
    start and waits for those in flight, so an abort never exits in the middle of one."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._active = 0
        self._stopped = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._changed:
            while self._stopped:  # an abort is under way: it exits the process
                self._changed.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def stop(self, timeout: float) -> bool:
        """Whether every write in flight ended within ``timeout`` seconds."""
        with self._changed:
            self._stopped = True
            return self._changed.wait_for(lambda: self._active == 0, timeout)


class Executor:
    def __init__(self, ctx: Context, backend: StateBackend, *, parallelism: int = 8,
                 progress: Callable[[str], None] | None = None, interrupt_grace: float = INTERRUPT_GRACE) -> None:
        self.ctx = ctx
        self.backend = backend
        self.parallelism = max(1, parallelism)
        self.progress = progress or (lambda _msg: None)
        self.interrupt_grace = interrupt_grace
        self._stop = threading.Event()
        self._halted: str | None = None
        # entered around every state write, so an abort (second Ctrl-C) never cuts one in half
        self._writing = _Writes()
        self._signals = 0

    def run(self, plan: Plan, *, max_deletes: int | None = None) -> ApplyReport:
        if max_deletes is not None and plan.deletes > max_deletes:
            raise ReconcileError(
                f"the plan would delete {plan.deletes} connector(s) (deletes and replaces), more than "
                f"--max-deletes {max_deletes}; nothing was changed"
            )
        self.backend.check_writable()
        report = ApplyReport(planned=sum(1 for a in plan.actions if a.kind is not ActionKind.NOOP))
        with self._interruptible():
            for old, new in plan.moved:
                entry = self.ctx.state.entries.get(new)
                with self._writing():
                    if entry is not None:
                        self.backend.rename(old, entry)
                    else:
                        self.backend.remove(old)
                report.state_only += 1
            for name in plan.forgotten:
                with self._writing():
                    self.backend.remove(name)
                report.state_only += 1
            # Where two objects may live side by side, deletes come last: an interruption then never
            # leaves fewer live connectors than before (a rename in git is a create plus a delete).
            # Elsewhere deletes come first, so that a name or key freed by one can be taken by a create.
            def last(a: Action) -> bool:
                provider = self.ctx.providers.get(a.provider)
                return provider is not None and provider.capabilities.create_before_destroy

            deletes = [a for a in plan.actions if a.kind is ActionKind.DELETE]
            phases = ([a for a in deletes if not last(a)], [a for a in plan.actions if a.kind is not ActionKind.DELETE],
                      [a for a in deletes if last(a)])
            for actions in phases:
                if not actions or self._stop.is_set():
                    continue
                for outcome in self._run_all(actions):
                    if isinstance(outcome, Outcome):
                        report.outcomes.append(outcome)
                    elif outcome is True:
                        report.state_only += 1
            report.interrupted = self._signals > 0
            try:
                with self._writing():
                    self.backend.flush()
            except StateWriteError as exc:
                self._halted = self._halted or str(exc)
        report.halted = self._halted
        return report

    def _run_all(self, actions: list[Action]) -> list[Outcome | bool | object]:
        """``_run_one`` of every action, ``parallelism`` at a time, the results in the actions' order.

        Each worker takes the next action itself when it is done with one: no future per action for
        the main thread to make up front (10 ms at 1,000 actions, while the first calls wait for the
        GIL) and to wake up for, one result at a time, while the workers need the GIL."""
        results: list[Outcome | bool | object] = [_SKIPPED] * len(actions)
        queue = iter(enumerate(actions))
        taking = threading.Lock()

        def work() -> None:
            while True:
                with taking:
                    nxt = next(queue, None)
                if nxt is None:
                    return
                results[nxt[0]] = self._run_one(nxt[1])

        with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
            for worker in [pool.submit(work) for _ in range(min(self.parallelism, len(actions)))]:
                worker.result()  # an exception no action caught is raised here, as pool.map did
        return results

    # -- interruption --------------------------------------------------------------------------
    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """First SIGINT/SIGTERM: start nothing new, let in-flight calls finish (at most
        ``interrupt_grace`` seconds), record them. Second: abort at once, between two state writes."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be installed from the main thread (library use)
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals += 1
        if self._signals == 1:
            self._stop.set()
            self.progress(f"{signal.Signals(signum).name}: starting no new action; waiting for the calls in flight "
                          f"(at most {self.interrupt_grace:.0f}s). Interrupt again to stop at once.")
            timer = threading.Timer(self.interrupt_grace, self._abort, args=("the calls in flight did not finish in "
                                                                             f"{self.interrupt_grace:.0f}s",))
            timer.daemon = True
            timer.start()
            return
        self._abort("interrupted twice")

    def _abort(self, why: str) -> None:
        # never mid-write: the journal stays whole; a call in flight may have happened unrecorded
        # (the next plan finds it by its identity, or the idempotency key returns it)
        got = self._writing.stop(timeout=5)
        self.progress(f"Aborted ({why}): the state holds every action recorded so far"
                      + ("" if got else " (a state write was still running)") + "; run apply again to finish.")
        for stream in (sys.stdout, sys.stderr):  # os._exit skips the buffers: the plan text must not vanish
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)

    def _halt(self, why: str) -> None:
        self._halted = self._halted or why
        self._stop.set()

    # -- state writes ----------------------------------------------------------------------------
    def _put(self, *entries: StateEntry) -> None:
        """One state write (several entries: one atomic write, see ``StateBackend.put_many``)."""
        with self._writing():
            if len(entries) == 1:
                self.backend.put(entries[0])
            else:
                self.backend.put_many(list(entries))

    def _remove(self, name: str) -> None:
        with self._writing():
            self.backend.remove(name)

    # -- one action ----------------------------------------------------------------------------
    def _run_one(self, action: Action) -> Outcome | bool | object:
        """An Outcome for an API action; for a no-op, whether the state was written; _SKIPPED when
        the run was interrupted or halted before the action started."""
        if self._stop.is_set():
            return _SKIPPED
        started = time.monotonic()
        destroyed = False
        try:
            if action.kind is ActionKind.NOOP:
                return self._refresh(action)
            provider = self.ctx.providers[action.provider]
            verb = {ActionKind.CREATE: "Creating", ActionKind.UPDATE: "Updating", ActionKind.REPLACE: "Replacing",
                    ActionKind.DELETE: "Destroying"}[action.kind]
            self.progress(f"{action.address}: {verb}...")
            live_id, job = None, None
            if action.kind is ActionKind.DELETE:
                provider.delete(self.ctx.live[action.name])
                self._remove(action.name)
            elif action.kind is ActionKind.UPDATE:
                connector = self.ctx.desired[action.name]
                changed = frozenset(c.top for c in action.changes)
                planner.fill_unowned(self.ctx.matches[action.name])  # what the update sends along
                live = provider.update(connector, self.ctx.live[action.name], changed)
                self._record(action, connector, live)
                live_id, job = live.id, self._maybe_sync(provider, connector, live)
            else:
                connector = self.ctx.desired[action.name]
                if action.kind is ActionKind.REPLACE:
                    live = self._replace(provider, action, connector)
                    destroyed = True
                else:
                    live = self._create(provider, action, connector)
                    self._record(action, connector, live)
                live_id, job = live.id, self._maybe_sync(provider, connector, live)
            seconds = time.monotonic() - started
            done = {ActionKind.DELETE: "Destruction", ActionKind.CREATE: "Creation", ActionKind.UPDATE: "Modification",
                    ActionKind.REPLACE: "Replacement"}[action.kind]
            self.progress(f"{action.address}: {done} complete after {seconds:.1f}s" + (f" [id={live_id}]" if live_id else ""))
            if action.kind is not ActionKind.DELETE and live.extra.get("auth_url"):  # an OAuth consent is due
                self.progress(f"{action.address}: waits for authorization: open {live.extra['auth_url']}")
            return Outcome(action, True, live_id=live_id, sync_job=job, seconds=seconds, destroyed=destroyed)
        except StateWriteError as exc:
            # the platform may have changed and the state cannot say so: start nothing more
            self._halt(str(exc))
            message = f"its platform call may have happened but could not be recorded: {exc}"
            self.progress(f"{action.address}: failed: {message}")
            return Outcome(action, False, error=message, seconds=time.monotonic() - started)
        except _ReplaceFailed as exc:
            message = redact.scrub(str(exc))
            self.progress(f"{action.address}: failed: {message}")
            return Outcome(action, False, error=message, seconds=time.monotonic() - started, destroyed=exc.destroyed)
        except (ProviderError, ReconcileError, NotImplementedError) as exc:
            message = redact.scrub(str(exc))
            self.progress(f"{action.address}: failed: {message}")
            return Outcome(action, False, error=message, seconds=time.monotonic() - started)

    def _replace(self, provider: Provider, action: Action, connector: Connector) -> LiveConnector:
        """Create-before-destroy where the platform lets the two live side by side (and the manifest
        does not say otherwise): a failed create then loses nothing. Else destroy, then create."""
        old = self.ctx.live[action.name]
        if not _create_first(provider, connector):
            provider.delete(old)
            self._remove(action.name)
            try:
                live = self._create(provider, action, connector)
            except (ProviderError, ReconcileError) as exc:
                if isinstance(exc, StateWriteError):
                    raise
                raise _ReplaceFailed(f"the original was destroyed and its re-create failed: {exc}", True) from None
            self._record(action, connector, live)
            return live
        try:
            live = self._replacement_left_live(provider, connector, old) or \
                self._create(provider, action, connector, original=old.id)
        except StateWriteError:
            raise
        except (ProviderError, ReconcileError) as exc:
            raise _ReplaceFailed(f"the replacement could not be created, the original is kept: {exc}", False) from None
        # the original stays recorded until it is gone, in the same write as its replacement: an
        # interrupted or failed delete is retried, and no crash leaves it live with no owner
        deposed = StateEntry(name=deposed_name(action.name, old.id), provider=action.provider, type=action.provider_type,
                             id=old.id, key=old.key, source=old.source, target=old.target, version=old.version)
        self._record(action, connector, live, deposed)
        try:
            provider.delete(old)
        except ProviderError as exc:
            raise _ReplaceFailed(f"the replacement {live.id} was created, but the original {old.id} could not be "
                                 f"deleted (the next apply retries): {exc}", False) from None
        self._remove(deposed.name)
        return live

    def _replacement_left_live(self, provider: Provider, connector: Connector,
                               old: LiveConnector) -> LiveConnector | None:
        """A create-first replace killed after its create committed but before the state said so
        leaves the replacement live beside the original, owned by no one: take it (same identity,
        the desired source and target, not the original) instead of making a second. Platforms that
        replay an idempotency key need no look (their create hands it back); the rest pay one lookup
        per replace, only on this path."""
        if provider.capabilities.idempotent_create or not provider.identity(connector):
            return None
        found = self._lookup(provider, connector)
        owned = {e.id for e in self.ctx.state.entries.values()}
        if found is None or found.id == old.id or found.id in owned:
            return None
        return found if (found.source, found.target) == (connector.source, connector.target) else None

    def _create(self, provider: Provider, action: Action, connector: Connector,
                original: str | None = None) -> LiveConnector:
        match = self.ctx.matches[action.name]
        key = idempotency_key(action.provider, connector, match.desired, match.fingerprint,
                              self._create_nonce(provider, action, connector))
        last: OutcomeUnknown | None = None
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return provider.create(connector, idempotency_key=key)
            except OutcomeUnknown as exc:
                last = exc
                log.info("%s: create outcome unknown (%s); looking it up before retrying", action.address, exc)
                found = self._lookup(provider, connector)
                # the original of a create-first replace carries the same identity: it is not the new one
                if found is not None and found.id != original:
                    return found
                time.sleep(min(2.0, 0.2 * 2 ** attempt))
        assert last is not None
        raise ProviderError(f"{action.address}: create failed after {CREATE_ATTEMPTS} attempts: {last}")

    def _create_nonce(self, provider: Provider, action: Action, connector: Connector) -> str:
        """For platforms that remember idempotency keys: the nonce of this create attempt, journaled
        before the call. An attempt left pending by a crash is resumed with its nonce (the platform
        replays what it made); any other create gets a new one, so a key it still remembers from a
        connector since deleted cannot hand back that dead connector."""
        if not provider.capabilities.idempotent_create:
            return ""
        entry = self.ctx.matches[action.name].entry
        if entry is not None and entry.create_nonce:
            return entry.create_nonce
        nonce = uuid.uuid4().hex
        # the entry keeps what it records (a replace's original stays owned); a successful create
        # writes a fresh entry, without the nonce
        pending = replace(entry, create_nonce=nonce) if entry is not None else StateEntry(
            # an id no platform hands out (so nothing matches it), unique (the state refuses two owners of one id)
            name=connector.name, provider=action.provider, type=action.provider_type, id=f"pending-create:{nonce}",
            source=connector.source,
            target=connector.target, create_nonce=nonce, prevent_destroy=connector.lifecycle.prevent_destroy)
        self._put(pending)
        return nonce

    @staticmethod
    def _lookup(provider: Provider, connector: Connector) -> LiveConnector | None:
        for attempt in range(4):
            try:
                found = provider.lookup(connector)
                return provider.read(found) if found is not None and not found.complete else found
            except ProviderError as exc:
                if not exc.retryable or attempt == 3:
                    raise
                time.sleep(0.2 * 2 ** attempt)
        return None

    def _maybe_sync(self, provider: Provider, connector: Connector, live: LiveConnector) -> str | None:
        if not connector.sync_on_apply or not provider.capabilities.can_sync:
            return None
        started = live.extra.get("sync_started")
        if started:
            return str(started) if started is not True else None
        try:
            return provider.trigger_sync(live).id
        except NothingToSync as exc:  # the connector is made; there is just nothing to run
            self.progress(f"{provider.config.name}.{connector.name}: no sync started: {exc}")
            return None

    def _refresh(self, action: Action) -> bool:
        """A no-op may still need the state brought up to date (adoption, a new version, a
        fingerprint recorded for the first time): a state write, no API call."""
        match = self.ctx.matches.get(action.name)
        if match is None or match.live is None:
            return False
        entry = match.entry
        wanted = self._entry(action, match.connector, match.live, match.fingerprint, match.desired)
        unchanged = {"applied_at": None}
        if entry is not None and not action.adopt and entry.to_json() | unchanged == wanted.to_json() | unchanged:
            return False
        self._put(wanted)
        return True

    def _record(self, action: Action, connector: Connector, live: LiveConnector, *also: StateEntry) -> None:
        """The applied connector's entry, and ``also`` in the same write."""
        match = self.ctx.matches[action.name]
        self._put(self._entry(action, connector, live, match.fingerprint, match.desired), *also)

    def _entry(self, action: Action, connector: Connector, live: LiveConnector, fp: str | None,
               desired: dict) -> StateEntry:
        # last_applied: what the manifests own from now on (field ownership); a JSON copy, as stored
        return StateEntry(
            name=connector.name, provider=action.provider, type=action.provider_type, id=live.id, key=live.key,
            source=live.source, target=live.target, version=live.version,
            fields=dict(live.fields) if live.complete else None, fingerprint=fp,
            prevent_destroy=connector.lifecycle.prevent_destroy,
            last_applied=json.loads(json.dumps(desired, default=str)),
            applied_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
