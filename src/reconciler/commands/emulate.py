"""``reconcile emulate TYPE``: serve a platform's API locally, with fault knobs."""
from __future__ import annotations

import click

from .. import console
from ..errors import ReconcileError
from ..emulators import TYPES, EmulatorConfig, serve_forever


@click.command("emulate")
@click.argument("type_name", metavar="TYPE", type=click.Choice(TYPES))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=0, help="Port (0: any free port).")
@click.option("--api-key", default="test-key", show_default=True, help="Requests without it get the platform's 401.")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Pre-create a collection / workspace / space/collection (repeatable). Airstore also takes "
                   "WORKSPACE/MEMBER[:ROLE] (a member, role member|admin|viewer) and WORKSPACE/* (any member id).")
@click.option("--member-token", "member_tokens", multiple=True, metavar="TOKEN=MEMBER",
              help="Airstore: a token that authenticates as member MEMBER (repeatable).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Keep the emulator's data here across restarts.")
@click.option("--latency", "latency_ms", type=float, default=0.0, help="Added latency per request, in ms.")
@click.option("--fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of requests answered 500/502/503.")
@click.option("--throttle-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of requests answered 429 with Retry-After.")
@click.option("--drop-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of writes committed, then the connection dropped before the response.")
@click.option("--slow-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of requests whose response is delayed by --slow-ms after the write committed.")
@click.option("--slow-ms", type=float, default=0.0)
@click.option("--seed", type=int, help="Seed for repeatable faults.")
@click.option("--sync-duration", type=float, default=1.0, show_default=True, help="Seconds a sync job runs.")
@click.option("--sync-fail", is_flag=True, help="Every sync job ends failed.")
@click.option("--sync-creation-delay", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Nango: seconds after a create before the connection's syncs exist (as on the real server).")
@click.option("--rate-limit", type=click.IntRange(1), metavar="N",
              help="Nango: N requests a minute per account, then 429 with Retry-After (the real server: 200).")
@click.option("--paging", type=click.Choice(["cursor", "offset", "link", "none"]),
              help="Aimable, Connectors API (paging undocumented): how lists page; `none` returns one capped "
                   "page and no way to the next. Default: cursor.")
@click.option("--update-mode", type=click.Choice(["replace", "merge"]),
              help="Connectors API: whether PUT replaces `config` or merges into it (undocumented). Default: replace.")
def command(type_name: str, host: str, port: int, api_key: str, targets: tuple[str, ...], data_dir: str | None,
            latency_ms: float, fail_rate: float, throttle_rate: float, drop_rate: float, slow_rate: float,
            slow_ms: float, seed: int | None, sync_duration: float, sync_fail: bool,
            member_tokens: tuple[str, ...], sync_creation_delay: float, rate_limit: int | None,
            paging: str | None = None, update_mode: str | None = None) -> None:
    """Serve a faithful local emulator of platform TYPE's connector API."""
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:  # bind before saying "listening": a busy port is an error, not a promise then a failure
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ReconcileError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port "
                             "(0 picks a free one)") from None
    port = sock.getsockname()[1]
    tokens = dict(t.split("=", 1) for t in member_tokens if "=" in t)
    if len(tokens) != len(member_tokens):
        raise click.BadParameter("write TOKEN=MEMBER", param_hint="--member-token")
    config = EmulatorConfig(api_key=api_key, targets=list(targets), member_tokens=tokens, latency_ms=latency_ms, fail_rate=fail_rate,
                            throttle_rate=throttle_rate, drop_rate=drop_rate, slow_rate=slow_rate, slow_ms=slow_ms,
                            seed=seed, data_dir=data_dir, sync_duration=sync_duration, sync_fail=sync_fail,
                            sync_creation_delay=sync_creation_delay, rate_limit=rate_limit, paging=paging,
                            update_mode=update_mode)
    try:
        serve_forever(type_name, config, host, port, sock=sock, ready=lambda: console.err(
            f"{type_name} emulator listening on http://{host}:{port} (Ctrl-C to stop)"))
    except ValueError as exc:  # a --target or --member-token the emulator cannot take
        raise click.UsageError(str(exc)) from None
