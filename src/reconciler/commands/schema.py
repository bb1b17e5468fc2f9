"""``reconcile schema``: print the manifest JSON Schema (the file editors use)."""
from __future__ import annotations

import click

from ..manifest.schema import schema_text


@click.command("schema")
def command() -> None:
    """Print the manifest JSON Schema (JSON Schema 2020-12)."""
    click.echo(schema_text(), nl=False)
