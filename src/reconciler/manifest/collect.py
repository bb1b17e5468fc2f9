"""Which files a PATH means: the file itself, or every *.yaml/*.yml below a directory, less what
the directory's ``.reconcileignore`` excludes (gitignore syntax, relative to the directory: a
``docker-compose.yml`` or a CI workflow kept beside the manifests is not one)."""
from __future__ import annotations

import os

from ..errors import Diagnostic
from ..model import Location

IGNORE_FILE = ".reconcileignore"


def _ignore_spec(root: str) -> tuple[object | None, list[Diagnostic]]:
    path = os.path.join(root, IGNORE_FILE)
    if not os.path.isfile(path):
        return None, []
    import pathspec  # only when a directory has one

    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        return pathspec.GitIgnoreSpec.from_lines(lines), []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, [Diagnostic(f"cannot use {IGNORE_FILE}: {exc}; write one gitignore pattern per line",
                                 Location(path, 1, 1))]


def manifest_files(path: str) -> tuple[list[str], list[Diagnostic]]:
    if os.path.isfile(path):
        return [path], []
    if not os.path.isdir(path):
        return [], [Diagnostic(f"{path}: no such file or directory")]
    found: list[str] = []
    spec, problems = _ignore_spec(path)
    if problems:
        return [], problems

    def ignored(parent: str, name: str, is_dir: bool) -> bool:
        if spec is None:
            return False
        rel = os.path.relpath(os.path.join(parent, name), path).replace(os.sep, "/")
        return spec.match_file(rel + "/" if is_dir else rel)  # type: ignore[attr-defined]

    for parent, dirs, files in os.walk(path):
        # .reconcile (state), .git and editor caches are never manifests
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not ignored(parent, d, True))
        found += [os.path.join(parent, f) for f in files
                  if f.endswith((".yaml", ".yml")) and not f.startswith(".") and not ignored(parent, f, False)]
    if not found:
        return [], [Diagnostic(f"{path}: no *.yaml or *.yml manifests found")]
    return sorted(found), []
