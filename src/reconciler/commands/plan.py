"""``reconcile plan``: compare the manifests with live state and show the changes."""
from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from .. import console
from ..plan.render import render_json, render_markdown, render_text
from ..state.file import write_atomic
from ._common import colour_stdout, load_manifest, manifest_options, open_engine


@click.command("plan")
@click.argument("path", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Save the plan (JSON) for `reconcile apply PLANFILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes, 0 when none, 1 on error.")
@manifest_options
def command(path: str, out: str | None, fmt: str, detailed_exitcode: bool, sandbox: bool, state_path: str | None,
            parallelism: int) -> None:
    """Show what `apply` would change; change nothing."""
    manifest = load_manifest(path, sandbox=sandbox)
    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        plan, _ctx = engine.plan()
    if out:
        doc = plan.to_json()
        doc["options"] = {"sandbox": sandbox, "state": str(Path(state_path).resolve()) if state_path else None,
                          "manifest_path": str(Path(path).resolve())}
        write_atomic(Path(out), json.dumps(doc, indent=2) + "\n")
        console.progress(f"plan saved to {out}; apply it with: reconcile apply {out}")
    if fmt == "json":
        console.out(render_json(plan), nl=False)
    elif fmt == "markdown":
        console.out(render_markdown(plan), nl=False)
    else:
        console.out(render_text(plan, colour=colour_stdout()))
    if detailed_exitcode and plan.has_changes:
        sys.exit(2)
