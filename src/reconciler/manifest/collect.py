"""Which files a PATH means: the file itself, or every *.yaml/*.yml below a directory, less what
the directory's ``.reconcileignore`` excludes (gitignore syntax, relative to the directory: a
``docker-compose.yml`` or a CI workflow kept beside the manifests is not one).

A pull request can commit symlinks and (in principle) name special files: a manifest that is a
symlink out of the manifest directory would make CI read (and print in its errors) a file of the
runner's choosing, and a FIFO or device would hang the run or read forever. Both are refused here,
before anything is opened.
"""
from __future__ import annotations

import os
import stat

from ..errors import Diagnostic
from ..model import Location

IGNORE_FILE = ".reconcileignore"


def _ignore_spec(root: str) -> tuple[object | None, list[Diagnostic]]:
    path = os.path.join(root, IGNORE_FILE)
    if not os.path.lexists(path):
        return None, []
    # the manifests' own rules: a pull request's .reconcileignore linking to /proc/self/environ or a
    # file of the runner's would be read, and a line the parser refuses is quoted in the error
    problem = _problem(path, root)
    if problem:
        return None, [Diagnostic(problem.replace("not a manifest file", f"not a {IGNORE_FILE} file"),
                                 Location(path, 1, 1))]
    import pathspec  # only when a directory has one

    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        return pathspec.GitIgnoreSpec.from_lines(lines), []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, [Diagnostic(f"cannot use {IGNORE_FILE}: {exc}; write one gitignore pattern per line",
                                 Location(path, 1, 1))]


def _problem(file: str, root: str) -> str | None:
    try:
        st = os.stat(file)  # follows symlinks: what would be read
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        return f"is {kind}, not a manifest file; refusing to read it"
    if os.path.islink(file) or _has_linked_parent(file):
        real, base = os.path.realpath(file), os.path.realpath(root)
        if not (real == base or real.startswith(base.rstrip(os.sep) + os.sep)):
            return (f"is a symlink to {real}, outside the manifest directory {base}; refusing to read it "
                    "(commit the file itself)")
    return None


def _has_linked_parent(file: str) -> bool:
    return os.path.realpath(os.path.dirname(file)) != os.path.abspath(os.path.dirname(file))


def manifest_files(path: str) -> tuple[list[str], list[Diagnostic]]:
    if not os.path.isdir(path):
        if not os.path.lexists(path):
            return [], [Diagnostic(f"{path}: no such file or directory")]
        problem = _problem(path, os.path.dirname(os.path.abspath(path)))
        return ([], [Diagnostic(problem, Location(path, 1, 1))]) if problem else ([path], [])
    found: list[str] = []
    diagnostics: list[Diagnostic] = []
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
        for f in files:
            if f.endswith((".yaml", ".yml")) and not f.startswith(".") and not ignored(parent, f, False):
                full = os.path.join(parent, f)
                problem = _problem(full, path)
                if problem:
                    diagnostics.append(Diagnostic(problem, Location(full, 1, 1)))
                else:
                    found.append(full)
    if not found and not diagnostics:
        return [], [Diagnostic(f"{path}: no *.yaml or *.yml manifests found")]
    return sorted(found), diagnostics
