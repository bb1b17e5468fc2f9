"""Which files a PATH means: the file itself, or every *.yaml/*.yml below a directory."""
from __future__ import annotations

import os

from ..errors import Diagnostic


def manifest_files(path: str) -> tuple[list[str], list[Diagnostic]]:
    if os.path.isfile(path):
        return [path], []
    if not os.path.isdir(path):
        return [], [Diagnostic(f"{path}: no such file or directory")]
    found: list[str] = []
    for parent, dirs, files in os.walk(path):
        # .reconcile (state), .git and editor caches are never manifests
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(parent, f) for f in files
                  if f.endswith((".yaml", ".yml")) and not f.startswith(".")]
    if not found:
        return [], [Diagnostic(f"{path}: no *.yaml or *.yml manifests found")]
    return sorted(found), []
