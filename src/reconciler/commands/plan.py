"""``reconcile plan``: compare the manifests with live state and show the changes."""
from __future__ import annotations

import sys
from contextlib import ExitStack

import click

from .. import console, planfile
from .._process_flags import keep
from ..plan.render import render_json, render_markdown, render_text
from ._common import change_options, colour_stdout, load_manifest, manifest_options, open_engine, selection


@click.command("plan")
@click.argument("path", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Save the plan (JSON) for `reconcile apply PLANFILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none, 1 on error.")
@click.option("--full-plan-url", metavar="URL",
              help="Markdown: where the full plan is (e.g. the CI artifact), linked when the comment is truncated.")
@change_options
@manifest_options
def command(path: str, out: str | None, fmt: str, detailed_exitcode: bool, full_plan_url: str | None,
            targets: tuple[str, ...], replace: tuple[str, ...], destroy: bool, sandbox: bool,
            state_path: str | None, parallelism: int) -> None:
    """Show what `apply` would change; change nothing."""
    chosen = selection(targets, replace, destroy)
    manifest = load_manifest(path, sandbox=sandbox, state_path=state_path)
    from ..api import make_plan  # imported while the manifests were parsed (_common.NEXT)

    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        plan, _ctx = make_plan(engine, chosen)
        keep(plan, _ctx)
    if out:
        planfile.save(plan, out, manifest_path=path, sandbox=sandbox, state_path=state_path, selection=chosen)
        console.progress(f"plan saved to {out}; apply it with: reconcile apply {out}")
    if fmt == "json":
        console.out(render_json(plan), nl=False)
    elif fmt == "markdown":
        console.out(render_markdown(plan, full_plan_url=full_plan_url), nl=False)
    else:
        console.out(render_text(plan, colour=colour_stdout()))
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)
