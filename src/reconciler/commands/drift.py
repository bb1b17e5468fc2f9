"""``reconcile drift``: the plan, for scheduled jobs. Exit 0 in sync, 2 drifted, 1 error.

Drift is anything a plan would change: a field the manifests own edited on a platform, a connector
deleted there, an entry the state still has to record. It is shown as the plan that would correct it.
Fields the manifests never declared (server defaults, values set in the platform's UI) are the
platform's, and never drift (docs/state.md, "Field ownership").
"""
from __future__ import annotations

import sys
from contextlib import ExitStack

import click

from .. import console
from .._process_flags import keep
from ..plan.render import render_json, render_markdown, render_text
from ..state import holder_description
from ._common import colour_stdout, load_manifest, manifest_options, open_engine, selection, target_option


@click.command("drift")
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--lock-timeout", type=float, default=None,
              help="Wait up to this many seconds for a running apply (the state lock) rather than read live "
                   "state halfway through it (without it, drift takes no lock).")
@target_option
@manifest_options
def command(path: str, fmt: str, lock_timeout: float | None, targets: tuple[str, ...], sandbox: bool,
            state_path: str | None, parallelism: int) -> None:
    """Check live connectors against the manifests; exit 2 when they drifted (0 in sync, 1 error)."""
    manifest = load_manifest(path, sandbox=sandbox, state_path=state_path)
    from ..api import make_plan  # imported while the manifests were parsed (_common.NEXT)

    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        if lock_timeout is not None:
            stack.enter_context(engine.backend.lock(timeout=lock_timeout, holder=holder_description()))
        plan, _ctx = make_plan(engine, selection(targets))
        keep(plan, _ctx)
    if fmt == "json":
        console.out(render_json(plan), nl=False)
    elif fmt == "markdown":
        console.out(render_markdown(plan), nl=False)
    else:
        console.out(render_text(plan, colour=colour_stdout()))
        console.progress("drift detected: run `reconcile apply` to correct it" if plan.has_changes
                         else "no drift: live connectors match the manifests")
    sys.exit(2 if plan.has_changes else 0)
