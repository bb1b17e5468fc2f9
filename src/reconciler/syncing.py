"""Run syncs and watch them to the end: find the live connectors, trigger, poll, cancel.

Polling backs off (0.5 s growing to 5 s, with jitter) so a long sync costs few calls. A poll that
fails for a transient reason (connection lost, 5xx or 429 after the HTTP client's own retries)
never fails the sync: the platform is still running it, so the watcher notes the trouble and keeps
polling until the deadline. Only a refusal (4xx) or the platform's own verdict ends a watch.

Nothing here prints: callers get :class:`SyncRun` values and an ``on_change`` callback.
"""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from . import redact
from .engine import Engine, _apply_moved
from .errors import ProviderError, ReconcileError
from .model import LiveConnector, Manifest
from .plan import planner
from .providers import Provider
from .providers.base import NothingToSync, SyncJob


@dataclass(slots=True)
class SyncRun:
    """One connector's sync, from trigger to verdict."""

    name: str
    provider: str  # the ``providers:`` entry
    platform: str  # its type
    live: LiveConnector | None = None
    job: SyncJob | None = None
    skipped: str | None = None  # why no sync was started (no sync API, nothing to sync)
    error: str | None = None  # the trigger or a poll was refused
    trouble: str | None = None  # the last transient polling failure (cleared by the next good poll)
    timed_out: bool = False

    @property
    def label(self) -> str:
        where = self.provider if self.provider == self.platform else f"{self.provider}: {self.platform}"
        return f"{self.name} ({where})"

    @property
    def active(self) -> bool:
        """Started, not finished, still watched."""
        return self.job is not None and not self.job.done and self.error is None and not self.timed_out

    @property
    def result(self) -> str:
        if self.skipped:
            return "skipped"
        if self.error and (self.job is None or not self.job.done):
            return "error"
        if self.timed_out:
            return "timed out"
        return self.job.status if self.job else "error"

    @property
    def failed(self) -> bool:
        """Something went wrong. A skip is not a failure, and neither is a sync still running when
        the watch gave up (``timed_out``): the platform goes on with it and may yet complete it."""
        if self.skipped is not None:
            return False
        if self.error is not None and (self.job is None or not self.job.done):
            return True
        return self.job is not None and self.job.status in ("failed", "cancelled")

    @property
    def problem(self) -> str | None:
        """One line saying what went wrong, in the platform's words where it gave any."""
        if self.skipped:
            return None
        if self.error:
            return self.error
        if self.job is not None and self.job.status == "failed":
            return f"sync {display_id(self.job.id)} failed: {self.job.error or 'the platform gave no reason'}"
        if self.job is not None and self.job.status == "cancelled":
            return f"sync {display_id(self.job.id)} was cancelled"
        if self.timed_out and self.job is not None:
            return (f"sync {display_id(self.job.id)} still {self.job.status} when --timeout ran out "
                    "(it goes on on the platform)")
        return None


def display_id(job_id: str) -> str:
    """A job id fit for a table: ids longer than a UUID are encodings of the reconciler's own
    (a platform without job ids), meaningless to read, so they are shortened."""
    return job_id if len(job_id) <= 36 else job_id[:12] + "…"


def describe_progress(progress: Mapping[str, int]) -> str:
    """``collected 120, parsed 118, indexed 100`` (keys in the platform's order)."""
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in progress.items())


# -- finding live connectors --------------------------------------------------------------------
def locate(engine: Engine, names: Iterable[str]) -> dict[str, LiveConnector | None]:
    """The live object of each named connector (None: not created yet).

    Lighter than a plan: one list per provider involved and the state's name → id map, no detail
    reads and no diff; a pending replace or prevent_destroy rule does not stand in the way.
    """
    manifest: Manifest = engine.manifest
    wanted = [manifest.connectors[n] for n in names]
    state = engine.backend.load()
    _apply_moved(manifest, state, engine.keys)  # a `moved:` not applied yet still finds its object
    found: dict[str, LiveConnector | None] = {c.name: None for c in wanted}
    by_provider: dict[str, list] = {}
    for c in wanted:
        by_provider.setdefault(c.provider, []).append(c)

    def one(provider_name: str) -> list[planner.Match]:
        provider = engine.providers[provider_name]
        desired = by_provider[provider_name]
        entries = state.for_provider(provider_name)
        targets = sorted({c.target for c in desired if c.target} | {e.target for e in entries if e.target})
        provider.recall(entries)
        live = list(provider.list(targets))
        return planner.pair(desired=desired, live=live, entries=entries, identity=provider.identity,
                            desired_fields=provider.desired_fields,
                            fingerprint_key=engine.keys[provider_name]).matches

    with ThreadPoolExecutor(max_workers=min(len(by_provider), 8) or 1) as pool:
        for matches in pool.map(one, sorted(by_provider)):
            for m in matches:
                found[m.connector.name] = m.live
    return found


# -- triggering ----------------------------------------------------------------------------------
def start(providers: Mapping[str, Provider], runs: list[SyncRun], *, parallelism: int = 8) -> None:
    """Trigger a sync for every run that has a live object and a platform with a sync API."""

    def one(run: SyncRun) -> None:
        provider = providers[run.provider]
        if not provider.capabilities.can_sync:
            run.skipped = f"{run.platform} has no sync API; it syncs on its own"
            return
        assert run.live is not None
        try:
            run.job = provider.trigger_sync(run.live)
        except NothingToSync as exc:
            run.skipped = str(exc)
        except ProviderError as exc:
            run.error = f"could not start a sync: {redact.scrub(str(exc))}"

    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(runs)))) as pool:
        list(pool.map(one, runs))


# -- watching ------------------------------------------------------------------------------------
class Backoff:
    """Delays between polls: ``start`` growing by ``factor`` up to ``cap``, each ±20 % jitter so that
    many watchers do not poll in step."""

    def __init__(self, start: float = 0.5, cap: float = 5.0, factor: float = 1.5,
                 rng: random.Random | None = None) -> None:
        self.current = start
        self.cap = cap
        self.factor = factor
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = self.current * self.rng.uniform(0.8, 1.2)
        self.current = min(self.cap, self.current * self.factor)
        return min(delay, self.cap)


class Watcher:
    """Polls every active run until each is done or ``timeout`` seconds have passed.

    ``on_change(run)`` is called from the calling thread whenever a run's status, progress or
    trouble changes. KeyboardInterrupt propagates (the caller decides about cancelling).
    """

    def __init__(self, providers: Mapping[str, Provider], runs: list[SyncRun], *, timeout: float,
                 on_change: Callable[[SyncRun], None] = lambda _run: None, parallelism: int = 8,
                 backoff: Backoff | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.providers = providers
        self.runs = runs
        self.timeout = timeout
        self.on_change = on_change
        self.parallelism = max(1, parallelism)
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.clock = clock

    def run(self) -> None:
        deadline = self.clock() + self.timeout
        pool = ThreadPoolExecutor(max_workers=self.parallelism)
        try:
            while True:
                active = [r for r in self.runs if r.active]
                if not active:
                    return
                for run, outcome in zip(active, pool.map(self._poll, active)):
                    if self._apply(run, outcome):
                        self.on_change(run)
                if not any(r.active for r in self.runs):
                    return
                remaining = deadline - self.clock()
                if remaining <= 0:
                    for r in self.runs:
                        if r.active:
                            r.timed_out = True
                            self.on_change(r)
                    return
                self.sleep(min(self.backoff.next(), remaining))
        finally:
            # on Ctrl-C do not wait for polls in flight; they end with their HTTP timeout
            pool.shutdown(wait=False, cancel_futures=True)

    def _poll(self, run: SyncRun) -> SyncJob | ProviderError:
        assert run.live is not None and run.job is not None
        try:
            return self.providers[run.provider].get_sync(run.live, run.job.id)
        except ProviderError as exc:
            return exc

    @staticmethod
    def _apply(run: SyncRun, outcome: SyncJob | ProviderError) -> bool:
        """Record one poll's outcome on ``run``; True when something visible changed."""
        before = (run.job.status if run.job else None, dict(run.job.progress) if run.job else None,
                  run.trouble, run.error)
        if isinstance(outcome, ProviderError):
            message = redact.scrub(str(outcome))
            if outcome.retryable:  # lost connection, 5xx, 429 after retries: the sync goes on
                run.trouble = f"polling failed, retrying: {message}"
            else:
                run.error = f"could not read sync {run.job.id if run.job else ''}: {message}"
        else:
            run.job = outcome
            run.trouble = None
        after = (run.job.status if run.job else None, dict(run.job.progress) if run.job else None,
                 run.trouble, run.error)
        return before != after


# -- cancelling ----------------------------------------------------------------------------------
def cancel(providers: Mapping[str, Provider], runs: list[SyncRun], *, parallelism: int = 8) -> None:
    """Cancel each run's job (platforms with can_cancel_sync only); the run's job shows the end."""

    def one(run: SyncRun) -> None:
        assert run.live is not None and run.job is not None
        try:
            run.job = providers[run.provider].cancel_sync(run.live, run.job.id)
        except ProviderError as exc:
            run.error = f"could not cancel sync {run.job.id}: {redact.scrub(str(exc))}"

    if runs:
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(runs)))) as pool:
            list(pool.map(one, runs))


def check_names(manifest: Manifest, only: Iterable[str]) -> list[str]:
    """The connectors to act on: ``only`` (each must be declared) or every declared one."""
    only = list(only)
    unknown = [n for n in only if n not in manifest.connectors]
    if unknown:
        declared = ", ".join(sorted(manifest.connectors)) or "none"
        raise ReconcileError(f"no connector named {', '.join(repr(n) for n in unknown)} in the manifests "
                             f"(declared: {declared})")
    return sorted(set(only)) if only else sorted(manifest.connectors)
