"""``reconcile fmt PATH [--check]``: rewrite manifests in the canonical form, comments kept."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import console
from ..errors import ReconcileError
from ..formatting import FormatError, format_text
from ..manifest.collect import manifest_files
from ..state.file import write_atomic


@click.command("fmt")
@click.argument("path", type=click.Path(exists=True))
@click.option("--check", is_flag=True, help="Change nothing; list the files that are not formatted and exit 1.")
@click.option("--diff", "show_diff", is_flag=True, help="Also print a unified diff of each change.")
def command(path: str, check: bool, show_diff: bool) -> None:
    """Format the manifests at PATH (a file or a directory tree) canonically.

    Prints each file it changed (with --check: each file it would change). Exit codes: 0 all
    formatted, 1 an error or (with --check) a file that needs formatting.
    """
    files, problems = manifest_files(path)
    if problems:
        raise ReconcileError("; ".join(str(p) for p in problems))
    failed = False
    unformatted = []
    for file in files:
        try:
            before = Path(file).read_text(encoding="utf-8")
            result = format_text(before, name=file)
        except (FormatError, UnicodeDecodeError) as exc:
            console.error(str(exc) if isinstance(exc, FormatError) else f"{file}: not UTF-8 text")
            failed = True
            continue
        if not result.changed:
            continue
        unformatted.append(file)
        console.out(file)
        if show_diff:
            import difflib

            console.out("".join(difflib.unified_diff(before.splitlines(True), result.text.splitlines(True),
                                                     f"{file} (before)", f"{file} (formatted)")), nl=False)
        if not check:
            mode = Path(file).stat().st_mode & 0o7777
            write_atomic(Path(file), result.text)
            os.chmod(file, mode)  # the atomic write's temp file is private; keep the file's own mode
    if failed or (check and unformatted):
        sys.exit(1)
