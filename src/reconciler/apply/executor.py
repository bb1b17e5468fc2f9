"""Carry out a plan: the create, update, replace and delete calls, in parallel, state after each.

Guarantees (DESIGN.md, "Apply guarantees"):
- the state is written after every successful call, durably, so a killed run loses nothing;
- a create whose outcome is unknown (timeout, dropped connection, crash) is looked up before it is
  tried again, and platforms that take an idempotency key get one that is stable for the same
  desired connector: no duplicates;
- one failing action does not stop the others; the report says exactly what succeeded and what not.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from .. import redact
from ..engine import Context
from ..errors import OutcomeUnknown, ProviderError, ReconcileError
from ..model import Connector, LiveConnector
from ..plan.model import Action, ActionKind, Plan
from ..providers import Provider
from ..state import StateBackend
from ..state.model import StateEntry

log = logging.getLogger("reconciler.apply")

CREATE_ATTEMPTS = 4


@dataclass(slots=True)
class Outcome:
    action: Action
    ok: bool
    error: str | None = None
    live_id: str | None = None
    sync_job: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class ApplyReport:
    outcomes: list[Outcome] = field(default_factory=list)
    state_only: int = 0  # adoptions, renames, forgotten entries: recorded without an API call

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def count(self, kind: ActionKind) -> int:
        return sum(1 for o in self.outcomes if o.ok and o.action.kind is kind)


def idempotency_key(provider: str, connector: Connector, desired: dict, fp: str | None) -> str:
    blob = json.dumps([provider, connector.name, desired, fp], sort_keys=True, default=str)
    return "rcn-" + hashlib.sha256(blob.encode()).hexdigest()[:40]


class Executor:
    def __init__(self, ctx: Context, backend: StateBackend, *, parallelism: int = 8,
                 progress: Callable[[str], None] | None = None) -> None:
        self.ctx = ctx
        self.backend = backend
        self.parallelism = max(1, parallelism)
        self.progress = progress or (lambda _msg: None)

    def run(self, plan: Plan, *, max_deletes: int | None = None) -> ApplyReport:
        if max_deletes is not None and plan.deletes > max_deletes:
            raise ReconcileError(
                f"the plan would delete {plan.deletes} connector(s) (deletes and replaces), more than "
                f"--max-deletes {max_deletes}; nothing was changed"
            )
        report = ApplyReport()
        for old, new in plan.moved:
            entry = self.ctx.state.entries.get(new)
            self.backend.remove(old)
            if entry is not None:
                self.backend.put(entry)
            report.state_only += 1
        for name in plan.forgotten:
            self.backend.remove(name)
            report.state_only += 1
        # deletes first, so that a name or natural key freed by one can be taken by a create
        phases = ([a for a in plan.actions if a.kind is ActionKind.DELETE],
                  [a for a in plan.actions if a.kind is not ActionKind.DELETE])
        for actions in phases:
            if not actions:
                continue
            with ThreadPoolExecutor(max_workers=self.parallelism) as pool:
                for outcome in pool.map(self._run_one, actions):
                    if isinstance(outcome, Outcome):
                        report.outcomes.append(outcome)
                    elif outcome:
                        report.state_only += 1
        self.backend.flush()
        return report

    # -- one action ----------------------------------------------------------------------------
    def _run_one(self, action: Action) -> Outcome | bool:
        """An Outcome for an API action; for a no-op, whether the state was written."""
        started = time.monotonic()
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
                self.backend.remove(action.name)
            elif action.kind is ActionKind.UPDATE:
                connector = self.ctx.desired[action.name]
                changed = frozenset(c.top for c in action.changes)
                live = provider.update(connector, self.ctx.live[action.name], changed)
                self._record(action, connector, live)
                live_id, job = live.id, self._maybe_sync(provider, connector, live)
            else:
                connector = self.ctx.desired[action.name]
                if action.kind is ActionKind.REPLACE:
                    provider.delete(self.ctx.live[action.name])
                    self.backend.remove(action.name)
                live = self._create(provider, action, connector)
                self._record(action, connector, live)
                live_id, job = live.id, self._maybe_sync(provider, connector, live)
            seconds = time.monotonic() - started
            done = {ActionKind.DELETE: "Destruction", ActionKind.CREATE: "Creation", ActionKind.UPDATE: "Modification",
                    ActionKind.REPLACE: "Replacement"}[action.kind]
            self.progress(f"{action.address}: {done} complete after {seconds:.1f}s" + (f" [id={live_id}]" if live_id else ""))
            return Outcome(action, True, live_id=live_id, sync_job=job, seconds=seconds)
        except (ProviderError, ReconcileError, NotImplementedError) as exc:
            message = redact.scrub(str(exc))
            self.progress(f"{action.address}: failed: {message}")
            return Outcome(action, False, error=message, seconds=time.monotonic() - started)

    def _create(self, provider: Provider, action: Action, connector: Connector) -> LiveConnector:
        match = self.ctx.matches[action.name]
        key = idempotency_key(action.provider, connector, match.desired, match.fingerprint)
        last: OutcomeUnknown | None = None
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return provider.create(connector, idempotency_key=key)
            except OutcomeUnknown as exc:
                last = exc
                log.info("%s: create outcome unknown (%s); looking it up before retrying", action.address, exc)
                found = self._lookup(provider, connector)
                if found is not None:
                    return found
                time.sleep(min(2.0, 0.2 * 2 ** attempt))
        assert last is not None
        raise ProviderError(f"{action.address}: create failed after {CREATE_ATTEMPTS} attempts: {last}")

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
        return provider.trigger_sync(live).id

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
        self.backend.put(wanted)
        return True

    def _record(self, action: Action, connector: Connector, live: LiveConnector) -> None:
        match = self.ctx.matches[action.name]
        self.backend.put(self._entry(action, connector, live, match.fingerprint, match.desired))

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
