"""Terminal output: colour only on a TTY (and never with ``NO_COLOR``), secrets scrubbed and control
characters escaped always (:mod:`reconciler.textsafe`)."""
from __future__ import annotations

import os
import sys
from typing import TextIO

import click

from . import redact
from .textsafe import escape, escape_keeping_colour


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def style(text: str, stream: TextIO | None = None, **kwargs: object) -> str:
    return click.style(text, **kwargs) if use_colour(stream or sys.stdout) else text  # type: ignore[arg-type]


def out(text: str = "", *, nl: bool = True) -> None:
    click.echo(escape_keeping_colour(redact.scrub(text)), nl=nl, color=use_colour(sys.stdout))


def err(text: str = "", *, nl: bool = True) -> None:
    click.echo(escape_keeping_colour(redact.scrub(text)), nl=nl, err=True, color=use_colour(sys.stderr))


def error(message: str) -> None:
    # a platform's error may quote a value read from a non-public variable back
    err(style("error: ", sys.stderr, fg="red", bold=True) + escape(redact.mask_env_text(message)))


def progress(message: str) -> None:
    """Progress for long work: stderr, so stdout stays the machine-readable result."""
    # two lines per action of an apply: the colour decision (environment, isatty) is made once per line
    colour = use_colour(sys.stderr)
    text = escape_keeping_colour(redact.scrub(message))
    click.echo(click.style(text, dim=True) if colour else text, err=True, color=colour)
