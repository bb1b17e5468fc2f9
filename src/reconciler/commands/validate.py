"""``reconcile validate PATH``: load and check manifests; no network."""
from __future__ import annotations

import click

from .. import console
from ..manifest import load


@click.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--no-env", is_flag=True,
              help="Do not read the environment: check ${VAR} syntax only (pre-commit hooks, editors).")
def command(path: str, no_env: bool) -> None:
    """Check the manifests at PATH (a file or a directory tree): schema, references, secrets.

    Prints every error as FILE:LINE:COL: message and exits 1, or prints a summary and exits 0.
    """
    manifest = load(path, resolve_env=not no_env)
    # fixed wording (no singular forms): scripts and hooks match on it
    n, p = len(manifest.connectors), len(manifest.providers)
    console.out(f"ok: {n} connector{'s' if n != 1 else ''} on {p} provider{'s' if p != 1 else ''}")
