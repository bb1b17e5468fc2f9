"""The Python API: ``load``, ``plan`` and ``apply``, for scripts and tools that embed the reconciler.

The CLI does the same steps with printing around them. A :class:`PlanResult` is a value: it holds
the reviewed :class:`~reconciler.plan.model.Plan` and the options it was made with, not open
connections, so it can be kept while a human reviews it. :func:`apply` therefore plans again under
the state lock and refuses (:class:`~reconciler.errors.PlanStale`) when the manifests or live state
moved since, exactly like ``reconcile apply plan.json``: what was reviewed is what gets applied.

    >>> from reconciler import load, plan, apply
    >>> result = plan(load("connectors/"))
    >>> print(result.render("text"))
    >>> report = apply(result, max_deletes=0)
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import Callable, Literal, Mapping

from . import redact
from .apply import ApplyReport, Executor
from .engine import Context, Engine
from .errors import PlanStale
from .manifest import load as _load
from .model import Manifest
from .plan.model import ActionKind, Plan
from .plan.targeting import Selection, select
from .plan.render import render_json, render_markdown, render_text
from .state import holder_description, open_backend

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """How a plan was made; :func:`apply` reuses them so it talks to the same state and platforms."""

    state_path: str | None = None
    parallelism: int = 8
    sandbox: bool = False
    timeout: float = 30.0  # seconds each HTTP call may take
    selection: Selection = Selection()  # --target / --replace / --destroy


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A plan and what :func:`apply` needs to carry it out later."""

    plan: Plan
    manifest: Manifest
    options: PlanOptions

    @property
    def has_changes(self) -> bool:
        return self.plan.has_changes

    def render(self, fmt: Literal["text", "json", "markdown"] = "text") -> str:
        """The plan as ``reconcile plan --format FMT`` prints it (secrets show as ``(sensitive)``)."""
        if fmt == "json":
            return render_json(self.plan)
        if fmt == "markdown":
            return render_markdown(self.plan)
        return render_text(self.plan)


def load(path: str | os.PathLike[str], env: Mapping[str, str] | None = None, *, sandbox: bool = False) -> Manifest:
    """Load and validate the manifests at ``path`` (a file or a directory tree).

    ``env`` defaults to ``os.environ``. With ``sandbox=True`` variables the environment lacks get
    placeholders, as ``--sandbox`` does. Raises :class:`~reconciler.errors.ManifestError` listing
    every problem; nothing touches the network.
    """
    if sandbox:
        from .sandbox import SandboxEnv

        base = SandboxEnv()
        if env is not None:
            base.clear()
            base.update(env)
        return _replace(_load(path, env=base), sandbox=True)
    return _load(path, env=env)


def plan(manifest: Manifest, *, state_path: str | None = None, parallelism: int = 8, sandbox: bool | None = None,
         target: tuple[str, ...] | list[str] = (), replace: tuple[str, ...] | list[str] = (), destroy: bool = False,
         progress: Progress | None = None) -> PlanResult:
    """Compare ``manifest`` with live state and return the plan; changes nothing.

    ``sandbox`` defaults to how the manifest was loaded (``load(..., sandbox=True)``): the embedded
    emulators, data in ``.reconcile/sandbox/``. ``target`` (names, addresses, globs), ``replace``
    and ``destroy`` are ``--target``, ``--replace`` and ``--destroy``; :func:`apply` keeps them.
    """
    options = PlanOptions(state_path=state_path, parallelism=parallelism,
                          sandbox=manifest.sandbox if sandbox is None else sandbox,
                          selection=Selection(tuple(target), tuple(replace), destroy))
    with ExitStack() as stack:
        engine = open_engine(stack, manifest, options, progress)
        the_plan, _ctx = make_plan(engine, options.selection)
    return PlanResult(the_plan, manifest, options)


def make_plan(engine: Engine, selection: Selection = Selection()) -> tuple[Plan, Context]:
    """The engine's plan, narrowed or rewritten by ``selection`` (``--target``/``--replace``/``--destroy``)."""
    fresh_file_state = _ephemeral_file_state(engine)
    the_plan, ctx = engine.plan()
    if fresh_file_state and (the_plan.adopted or any(u.marked for u in the_plan.unmanaged)):
        the_plan.warnings.append(
            f"running in CI (CI=true) with a file state that does not exist yet ({engine.backend.description}), "
            "while connectors that look like ours already exist live: on an ephemeral runner the state is lost "
            "after every run, so the next plan adopts them again and a connector removed from the manifests can "
            "never be planned for deletion. Keep the state in PostgreSQL "
            "(`state: {backend: postgres, dsn: ${RECONCILE_STATE_DSN}}`), shared by every run")
    if selection.empty:
        return the_plan, ctx
    owned = {a.name for a in the_plan.actions if a.kind is ActionKind.DELETE}
    owned |= {n for n, m in ctx.matches.items() if m.live is not None and m.entry is not None and not m.adopt}
    protected = {n for n, c in ctx.desired.items() if c.lifecycle.prevent_destroy}
    protected |= {n for n, e in ctx.state.entries.items() if e.prevent_destroy}
    return select(the_plan, selection, owned=owned, protected=protected), ctx


def apply(plan_result: PlanResult, *, max_deletes: int | None = None, lock_timeout: float = 0.0,
          progress: Progress | None = None) -> ApplyReport:
    """Carry out ``plan_result``; returns what succeeded and what failed (``report.failed``).

    Holds the state lock for the whole run (waiting up to ``lock_timeout`` seconds). Raises
    :class:`~reconciler.errors.PlanStale`, changing nothing, when the manifests or live state moved
    since the plan was made, and :class:`~reconciler.errors.ReconcileError` when the plan deletes
    more than ``max_deletes`` connectors.
    """
    options = plan_result.options
    with ExitStack() as stack:
        engine = open_engine(stack, plan_result.manifest, options, progress)
        stack.enter_context(engine.backend.lock(timeout=lock_timeout, holder=holder_description()))
        current, ctx = replan_unchanged(engine, plan_result.plan, selection=options.selection)
        executor = Executor(ctx, engine.backend, parallelism=options.parallelism, progress=progress)
        if not current.has_changes:
            # no platform call, but the state may learn something (as the CLI's apply): a newer version
            # marker, or what an entry from before field ownership owns
            executor.run(current)
            return ApplyReport()
        return executor.run(current, max_deletes=max_deletes)


def plan_signature(plan: Plan) -> dict[str, tuple]:
    """What must not move between review and apply: each changing action and its live token."""
    return {
        # values from non-public variables compare masked, as a saved plan holds them (the manifest
        # digest binds their real values)
        a.address: (a.kind.value, a.live_token,
                    tuple((c.path, repr(redact.mask_env(c.before)), repr(redact.mask_env(c.after))) for c in a.changes),
                    a.adopt)
        for a in plan.actions if a.changes_something
    }


def _ephemeral_file_state(engine: Engine) -> bool:
    from .state.file import FileBackend

    backend = engine.backend
    return (os.environ.get("CI", "").lower() in ("true", "1") and isinstance(backend, FileBackend)
            and not backend.path.exists() and not backend.journal.exists())


def replan_unchanged(engine: Engine, reviewed: Plan, what: str = "the plan", *,
                     selection: Selection = Selection()) -> tuple[Plan, Context]:
    """Plan again (with the reviewed plan's ``selection``); refuse (:class:`PlanStale`) unless it is
    the reviewed plan, action for action."""
    if engine.manifest_digest() != reviewed.manifest_digest:
        raise PlanStale(f"the manifests (or the variables they read) changed since {what} was made; "
                        "run `reconcile plan` again and review the new plan")
    current, ctx = make_plan(engine, selection)
    old, new = plan_signature(reviewed), plan_signature(current)
    if old != new:
        moved = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise PlanStale(f"live state moved since {what} was made ({', '.join(moved[:10])}"
                        f"{' ...' if len(moved) > 10 else ''}); run `reconcile plan` again and review it")
    return current, ctx


def open_engine(stack: ExitStack, manifest: Manifest, options: PlanOptions, progress: Progress | None) -> Engine:
    """An engine over the (possibly sandboxed) manifest, closed with ``stack``."""
    as_written = manifest
    if options.sandbox:
        from .sandbox import sandboxed

        manifest = stack.enter_context(sandboxed(manifest))
    backend = open_backend(manifest, path_override=options.state_path, sandbox=options.sandbox)
    engine = Engine(manifest, backend, parallelism=options.parallelism, progress=progress, as_written=as_written,
                    timeout=options.timeout)
    stack.callback(engine.close)
    return engine


__all__ = ["ApplyReport", "PlanOptions", "PlanResult", "Selection", "apply", "load", "make_plan", "plan", "plan_signature"]
