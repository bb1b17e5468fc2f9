"""Options and steps shared by the commands that talk to platforms."""
from __future__ import annotations

import functools
import importlib
import os
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Callable

import click

from .. import console
from .._process_flags import keep
from ..manifest import load
from ..manifest.parallel import Beside
from ..model import Manifest
from ..plan.targeting import Selection
from ..state import read_ahead

if TYPE_CHECKING:
    from ..engine import Engine

# What a command that talks to platforms needs once its manifests are loaded (the engine, the
# executor, httpx: ~40 ms of imports), imported by this process while a reader process parses them:
# the command modules import it only where they use it, never at their top
NEXT = "reconciler.api"


def manifest_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--sandbox", is_flag=True,
                  help="Run against embedded emulators (data in .reconcile/sandbox/): no account, no network.")
    @click.option("--state", "state_path", type=click.Path(dir_okay=False),
                  help="State file (default: .reconcile/state.json next to the manifests).")
    @click.option("--parallelism", type=click.IntRange(1, 256), default=8, show_default=True,
                  help="Concurrent API calls per provider.")
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def target_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--target", "targets", multiple=True, metavar="NAME",
                        help="Only this connector (name, provider.name, or a glob such as 'slack-*'); repeatable. "
                             "The result is partial: the rest of the manifests is not reconciled.")(fn)


def change_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--target``, ``--replace`` and ``--destroy``: what ``plan`` and ``apply`` act on."""
    fn = click.option("--destroy", is_flag=True,
                      help="Plan the deletion of every connector the state owns (prevent_destroy is honoured).")(fn)
    fn = click.option("--replace", "replace", multiple=True, metavar="NAME",
                      help="Replace this connector (delete, then create) although it looks fine; repeatable.")(fn)
    return target_option(fn)


def selection(targets: tuple[str, ...] = (), replace: tuple[str, ...] = (), destroy: bool = False) -> Selection:
    return Selection(tuple(targets), tuple(replace), destroy)


def load_manifest(path: str, *, sandbox: bool, state_path: str | None = None, read_state_ahead: bool = True) -> Manifest:
    """The manifests at PATH; with ``read_state_ahead``, the state the command reads next
    (``state_path``, else the default file) is read meanwhile by a manifest reader process, when
    there is one."""
    if sandbox:
        from ..sandbox import SandboxEnv

        manifest = load(path, env=SandboxEnv())
    else:
        manifest = load(path, beside=read_ahead(path, state_path, Beside) if read_state_ahead else None,
                        meanwhile=_import_next if NEXT not in sys.modules else None)  # else a reader would not pay
    keep(manifest)
    return manifest


def _import_next() -> None:
    importlib.import_module(NEXT)


DEFAULT_TIMEOUT = 30.0


def http_timeout() -> float:
    """Seconds each HTTP call may take (connect, read, write): ``RECONCILE_HTTP_TIMEOUT``, default 30."""
    from ..http import env_seconds

    return env_seconds("RECONCILE_HTTP_TIMEOUT", DEFAULT_TIMEOUT, 3600, zero=False)


def open_engine(stack: ExitStack, manifest: Manifest, *, sandbox: bool, state_path: str | None,
                parallelism: int) -> Engine:
    """An engine over the (possibly sandboxed) manifest, closed with ``stack``; progress on stderr."""
    from .. import api

    options = api.PlanOptions(state_path=state_path, parallelism=parallelism, sandbox=sandbox, timeout=http_timeout())
    engine = api.open_engine(stack, manifest, options, console.progress)
    keep(engine)
    return engine


def colour_stdout() -> bool:
    return console.use_colour(sys.stdout)


def interactive() -> bool:
    return sys.stdin.isatty() and not os.environ.get("CI")
