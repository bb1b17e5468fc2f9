"""``reconcile apply``: carry out the plan for PATH, or a plan saved by ``plan -o``."""
from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import console, planfile
from .._process_flags import keep
from ..errors import ReconcileError
from ..plan.model import FORMAT_VERSION, ActionKind, Plan
from ..plan.render import render_text
from ..state import holder_description
from ._common import (change_options, colour_stdout, interactive, load_manifest, manifest_options, open_engine,
                      selection)

if TYPE_CHECKING:
    from ..apply import ApplyReport


def _read_planfile(path: str) -> dict | None:
    """The saved plan at ``path``, or None when ``path`` is a manifest."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".json":
        return None
    try:
        doc = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ReconcileError(f"{path}: not a readable plan file ({exc})") from exc
    if not isinstance(doc, dict) or "format_version" not in doc:
        raise ReconcileError(f"{path}: not a plan file (write one with `reconcile plan PATH -o {path}`)")
    if doc["format_version"] != FORMAT_VERSION:
        raise ReconcileError(f"{path}: plan format {doc['format_version']!r} is not supported (expected {FORMAT_VERSION})")
    _check_plan_shape(doc, path)
    return doc


def _check_plan_shape(doc: dict, path: str) -> None:
    """A saved plan that is not what ``plan -o`` writes (edited, truncated by an artifact store,
    from another tool) is refused by the plan schema, before anything reads a field of it: the
    fields it lacks used to end in a traceback."""
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json").read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path) or "the top level"
    raise ReconcileError(f"{path}: not a plan file `reconcile plan -o` wrote ({where}: {error.message}); "
                         f"make a new one with `reconcile plan PATH -o {path}`")


@click.command("apply")
@click.argument("target", metavar="PATH|PLANFILE", type=click.Path(exists=True))
@click.option("-y", "--yes", "--auto-approve", "yes", is_flag=True, help="Apply without asking (needed in CI for PATH).")
@click.option("--max-deletes", type=click.IntRange(0), help="Abort before any call if the plan would delete more.")
@click.option("--lock-timeout", type=float, default=0.0, show_default=True,
              help="Seconds to wait for another apply holding the state lock.")
@change_options
@manifest_options
def command(target: str, yes: bool, max_deletes: int | None, lock_timeout: float, targets: tuple[str, ...],
            replace: tuple[str, ...], destroy: bool, sandbox: bool, state_path: str | None, parallelism: int) -> None:
    """Make the platforms match the manifests (or a saved plan)."""
    saved = _read_planfile(target)
    path = target
    chosen = selection(targets, replace, destroy)
    if saved is not None:
        if not chosen.empty:
            raise ReconcileError("--target, --replace and --destroy belong to `reconcile plan -o`: a saved plan "
                                 "already carries them; nothing was changed")
        path, saved_state = planfile.locate(saved)
        chosen = planfile.selection(saved)
        sandbox = sandbox or bool(saved.get("options", {}).get("sandbox"))
        state_path = state_path or saved_state
    elif not (yes or sandbox) and not interactive():
        raise ReconcileError("non-interactive apply needs --yes, or a saved plan (`reconcile plan PATH -o plan.json` "
                             "then `reconcile apply plan.json`); nothing was changed")
    manifest = load_manifest(path, sandbox=sandbox, state_path=state_path)
    # imported while the manifests were parsed (_common.NEXT), not at this module's top
    from ..api import make_plan, replan_unchanged
    from ..apply import Executor

    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        stack.enter_context(engine.backend.lock(timeout=lock_timeout, holder=holder_description()))
        engine.backend.check_writable()  # before any platform call: a change the state cannot record is lost
        if saved is not None:
            plan, ctx = replan_unchanged(engine, Plan.from_json(saved), target, selection=chosen)
        else:
            plan, ctx = make_plan(engine, chosen)
            console.out(render_text(plan, colour=colour_stdout()))
        keep(plan, ctx)
        executor = Executor(ctx, engine.backend, parallelism=parallelism, progress=console.progress)
        if not plan.has_changes:
            # nothing to call, but the state may still learn something (a fingerprint for an imported
            # connector, a newer version marker): a state-only refresh, like Terraform's
            executor.run(plan)
            if saved is not None:
                console.out("No changes. Live connectors match the manifests.")
            return
        if saved is None and not (yes or sandbox):
            console.out("")
            if click.prompt("Do you want to perform these actions? Only 'yes' will be accepted", default="",
                            show_default=False) != "yes":
                raise ReconcileError("apply cancelled; nothing was changed")
        report = executor.run(plan, max_deletes=max_deletes)
    _print_report(report)
    if chosen.targets:  # Terraform's reminder, after the fact too
        console.out("Warning: applied with --target; changes outside the targets were not applied. "
                    "Run `reconcile plan` without --target to see what is still pending.")
    if report.interrupted:
        sys.exit(130)
    if report.failed or report.halted:
        sys.exit(1)


def _counts(report: ApplyReport) -> str:
    text = (f"{report.count(ActionKind.CREATE)} added, {report.count(ActionKind.UPDATE)} changed, "
            f"{report.count(ActionKind.REPLACE)} replaced, {report.destroyed} destroyed")
    lost = len(report.lost)
    if lost:  # a replace that deleted the original and could not create its successor
        text += "; its re-create failed" if lost == 1 else f"; {lost} of their re-creates failed"
    return text


def _print_report(report: ApplyReport) -> None:
    counts = _counts(report)
    extra = f" ({report.state_only} recorded in the state only)" if report.state_only else ""
    console.out("")
    if report.interrupted:
        failed = f"; {len(report.failed)} failed" if report.failed else ""
        console.out(f"Interrupted: {report.done} of {report.planned} action{'s' if report.planned != 1 else ''} done "
                    f"({counts}{failed}){extra}; run apply again to finish.")
    elif not report.failed and not report.halted:
        console.out(f"Apply complete! Connectors: {counts}.{extra}")
        return
    elif report.failed:
        n, total = len(report.failed), len(report.outcomes)
        console.out(f"Apply incomplete: {n} of {total} action{'s' if total != 1 else ''} failed. Done: {counts}.{extra}")
    else:
        console.out(f"Apply stopped: {report.done} of {report.planned} actions done ({counts}).{extra}")
    for o in report.failed:
        console.out(f"  {o.action.address} ({o.action.kind.value}): {o.error}")
    if report.halted:
        console.error(report.halted)
    if not report.interrupted:
        console.out("Completed actions are recorded in the state; run `reconcile apply` again to retry the rest.")
