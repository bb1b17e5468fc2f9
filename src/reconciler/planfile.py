"""Saved plans (``reconcile plan -o plan.json``): what they record besides the plan, and where the
manifests are when the plan is applied.

A saved plan is applied on another machine (the CI runner that merges), from another checkout path.
It therefore names the manifests (and a ``--state`` file) relative to the repository root, the
nearest directory above holding ``.git``, and is applied against the checkout found from the
current directory. It also records the selection (``--target``, ``--replace``, ``--destroy``) so
the re-plan at apply time is made the same way: a plan made with ``--target`` applies only those.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ReconcileError
from .plan.model import Plan
from .plan.render import plan_document
from .plan.targeting import Selection
from .state.file import write_atomic


def repo_root(start: str | os.PathLike[str] = ".") -> Path:
    """The repository holding ``start`` (a ``.git`` entry above it), else the current directory."""
    here = Path(start).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    return Path.cwd().resolve()


def _relative(path: str, root: Path) -> str:
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(root).as_posix() or "."
    except ValueError:  # outside the repository: only an absolute path can find it again
        return str(absolute)


def save(plan: Plan, out: str, *, manifest_path: str, sandbox: bool, state_path: str | None,
         selection: Selection) -> None:
    root = repo_root(manifest_path)
    doc = plan_document(plan)  # values from non-public variables masked, as shown; apply compares them masked
    doc["options"] = {
        "sandbox": sandbox,
        "state": _relative(state_path, root) if state_path else None,
        "manifest_path": _relative(manifest_path, root),
        "relative_to": "repository",
        **selection.to_json(),
    }
    write_atomic(Path(out), json.dumps(doc, indent=2) + "\n")


def locate(doc: dict[str, Any]) -> tuple[str, str | None]:
    """The manifests' path and the ``--state`` file of a saved plan, in this checkout."""
    options = doc.get("options", {})
    recorded = options.get("manifest_path") or doc["manifest"]["root"]
    root = repo_root()
    if options.get("relative_to") == "repository":
        path = recorded if Path(recorded).is_absolute() else str(root / recorded)
        state = options.get("state")
        state = state if state is None or Path(state).is_absolute() else str(root / state)
    else:  # a plan saved before plans were repository-relative
        path, state = recorded, options.get("state")
    if not Path(path).exists():
        raise ReconcileError(f"the plan was made from {recorded} (relative to the repository root), which does not "
                             f"exist in {root}; apply the plan from a checkout of the same repository")
    return path, state


def selection(doc: dict[str, Any]) -> Selection:
    return Selection.from_json(doc.get("options"))
