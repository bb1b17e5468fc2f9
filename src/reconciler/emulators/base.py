"""What every platform emulator shares: configuration, fault injection, persistence, serving.

Each ``emulators/<type>.py`` exports ``create_app(config: EmulatorConfig) -> Starlette`` that
speaks that platform's real paths, auth, envelopes, pagination and errors. This module wraps it in
:class:`FaultMiddleware` (latency, 5xx, 429 with ``Retry-After``, a dropped connection after the
write committed), counts requests for tests (``GET /_emulator/stats``), and runs it with uvicorn,
either as ``reconcile emulate`` or in a background thread (tests, ``--sandbox``).

Serving is uvicorn's with its production extras: httptools parses HTTP (a dependency) and uvloop
runs the event loop where it can be imported (a dependency except on Windows, which it does not
support; asyncio's own loop otherwise). Every request's CPU runs serially on that one loop: at 16
parallel clients whose latency sleeps end together, each waits for the others' handling.

The fault knobs never touch ``/_emulator/*`` paths, which exist for tests and benchmarks only.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import orjson
import uvicorn
from starlette import responses
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

ADMIN_PREFIX = "/_emulator"


@dataclass
class EmulatorConfig:
    api_key: str = "test-key"
    targets: list[str] = field(default_factory=list)  # collections / workspaces / space/collection pre-created
    latency_ms: float = 0.0
    fail_rate: float = 0.0  # 500/502/503 before anything happens
    throttle_rate: float = 0.0  # 429 with Retry-After
    drop_rate: float = 0.0  # the write commits, then the connection drops before the response
    slow_rate: float = 0.0  # the response is delayed by slow_ms after the write committed
    slow_ms: float = 0.0
    retry_after: float | None = 0.05  # seconds announced in Retry-After; None: a 429 without the header
    echo_rate: float = 0.0  # test-only: a write is refused with a 422 whose message echoes the request body
    seed: int | None = None
    data_dir: str | None = None  # persist state here (JSON), e.g. .reconcile/sandbox
    sync_duration: float = 1.0  # seconds a sync job takes from queued to completed
    sync_fail: bool = False  # every sync job ends failed
    page_limit_max: int | None = None  # override the platform's page-size cap (benchmarks)
    # Nango: seconds after a create before the connection's syncs exist (the real server makes them in
    # the background; a frequency PUT before then is 400 unknown_sync). Tests shorten it.
    sync_creation_delay: float = 1.0
    # Nango: requests a window allows per account (the real server: 200 a minute), then 429 with
    # Retry-After. Off (None) by default: tests that send more than 200 requests a minute to one
    # emulator stall for the rest of each window (with it on, test_crash's nango-both case took 124 s
    # instead of 26 s); tests and `reconcile emulate --rate-limit` turn it on.
    rate_limit: int | None = None
    rate_limit_window: float = 60.0
    # how list endpoints page where the platform's docs are silent (aimable, connectors-api):
    # "cursor" (the emulator's default), "offset", "link" (RFC 8288 Link header), "none" (a
    # capped first page and no way to the next: a truncated list)
    paging: str | None = None
    # how an update merges into a stored sub-object where the docs are silent (connectors-api
    # PUT config): "replace" (default) or "merge" (JSON merge patch: null removes a key)
    update_mode: str | None = None
    # the word a finished sync reports as its status (default: the platform's own), to try
    # clients against words they do not know
    sync_status_word: str | None = None
    member_tokens: dict[str, str] = field(default_factory=dict)  # airstore: token -> member external id
    # test-only: while this event is clear, requests wait before being handled (a test holds a client
    # mid-run at a known point instead of hoping a latency is long enough)
    gate: threading.Event | None = None
    # airweave: the GitHub repositories (-> their branches; empty: any branch) its create check
    # finds; None: every well-formed one except those named like ``owner/not-found`` (and a branch
    # named ``not-found``)
    github_repos: dict[str, list[str]] | None = None


def _plain(content: Any) -> bool:
    """True when ``content`` holds only dicts, lists, strings, ints, booleans and None (exact types)."""
    stack = [content]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is dict:
            push(item.values())
        elif kind is list:
            push(item)
        elif kind is not str and kind is not int and kind is not bool and item is not None:
            return False
    return True


def json_bytes(content: Any) -> bytes:
    """``content`` as starlette's JSONResponse encodes it, byte for byte, mostly by orjson.

    json.dumps was a tenth of a create's CPU. For the plain types of :func:`_plain` orjson writes
    the same bytes (compact separators, UTF-8 unescaped, the same escapes); anything else takes the
    standard encoder, and with it every difference: floats (orjson writes ``1e-6`` and
    ``0.0000999`` where Python writes ``1e-06`` and ``9.99e-05``, and NaN as null where starlette
    refuses it), non-string keys, integers past 64 bits, lone surrogates, datetimes, enums, tuples,
    subclasses. orjson runs first: on a cycle it raises where the walk would not end.
    """
    try:
        payload = orjson.dumps(content)
    except TypeError:  # orjson.JSONEncodeError; the standard encoder raises its own error or agrees
        payload = None
    if payload is None or not _plain(content):
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")
    return payload


class JSONResponse(responses.JSONResponse):
    """starlette's JSONResponse, rendered by :func:`json_bytes` (the same bytes, less CPU)."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


_MISSING = object()
_BASE_URLS: dict[tuple[Any, ...], str] = {}


def base_url(request: Request) -> str:
    """``str(request.base_url)``, remembered per the scope values starlette builds it from (scheme,
    server, root paths, the first Host header): it made a URL object per call, a twentieth of an
    Airweave create. Bounded: the Host header is the client's to vary."""
    scope = request.scope
    server = scope.get("server", _MISSING)
    key = (scope.get("scheme", _MISSING), tuple(server) if isinstance(server, list) else server,
           scope.get("root_path", _MISSING), scope.get("app_root_path", _MISSING), request.headers.get("host"))
    url = _BASE_URLS.get(key)
    if url is None:
        if len(_BASE_URLS) >= 256:
            _BASE_URLS.clear()
        url = _BASE_URLS[key] = str(request.base_url)
    return url


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_id() -> str:
    """``str(uuid.uuid4())``: the same random bytes and version/variant bits, formatted without
    building a UUID object (half the time; a create takes three)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Store:
    """The emulator's data, one JSON document, persisted atomically after every change.

    Handlers mutate ``self.data`` under ``self.lock`` and call :meth:`save`.
    """

    def __init__(self, name: str, data_dir: str | None, initial: dict[str, Any]) -> None:
        self.lock = threading.RLock()
        self.path = Path(data_dir) / f"{name}.json" if data_dir else None
        if self.path and self.path.exists():
            self.data = json.loads(self.path.read_text())
        else:
            self.data = initial

    def save(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh)
        os.replace(tmp, self.path)


PAGING_MODES = ("cursor", "offset", "link", "none")


class BadCursor(ValueError):
    """The client sent a cursor or offset this emulator never handed out."""


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "seq":
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("invalid cursor") from None


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None = None  # for the body (mode "cursor")
    headers: dict[str, str] = field(default_factory=dict)  # a Link header (mode "link")


def paginate(mode: str | None, rows: list[dict[str, Any]], limit: int, params: Any, url: Any,
             seq: Callable[[dict[str, Any]], int]) -> Page:
    """One page of ``rows`` (already in list order) the way ``mode`` pages.

    ``seq`` gives each row's position marker for cursors; ``url`` is the request URL (a
    starlette URL) for the Link header.
    """
    mode = mode or "cursor"
    if mode not in PAGING_MODES:
        raise ValueError(f"unknown paging mode {mode!r}; expected one of {', '.join(PAGING_MODES)}")
    if mode == "none":  # the first page only, whatever the client asks for
        return Page(rows[:limit])
    if mode == "offset":
        try:
            offset = int(params.get("offset") or 0)
        except ValueError:
            raise BadCursor("invalid offset") from None
        if offset < 0:
            raise BadCursor("invalid offset")
        return Page(rows[offset:offset + limit])
    start = 0
    if params.get("cursor"):
        after = decode_cursor(params["cursor"])
        start = next((i + 1 for i, row in enumerate(rows) if seq(row) == after), None)
        if start is None:  # the row the cursor names is gone: resume after the first one past it
            order = [seq(r) for r in rows]
            ascending = order == sorted(order)
            start = next((i for i, s in enumerate(order) if (s > after if ascending else s < after)), len(rows))
    chunk = rows[start:start + limit]
    more = start + limit < len(rows)
    cursor = encode_cursor(seq(chunk[-1])) if more and chunk else None
    if mode == "link":
        headers = {"link": f'<{url.include_query_params(cursor=cursor, limit=limit)}>; rel="next"'} if cursor else {}
        return Page(chunk, None, headers)
    return Page(chunk, cursor)


class JobClock:
    """Sync jobs that advance with wall time: queued → running → completed | failed | cancelled.

    A job is a dict with ``created`` (epoch seconds); :meth:`view` computes its status and progress
    counters at the moment of the request, so no background task is needed.
    """

    def __init__(self, duration: float, fail: bool, total_records: int = 120) -> None:
        self.duration = max(duration, 0.01)
        self.fail = fail
        self.total = total_records

    def new(self) -> dict[str, Any]:
        return {"id": new_id(), "created": time.time(), "created_at": now_iso(), "cancelled_at": None}

    def view(self, job: dict[str, Any]) -> dict[str, Any]:
        """status, fraction done (0..1), records so far, started_at/finished_at, error."""
        elapsed = time.time() - job["created"]
        queued_for = self.duration * 0.1
        if job.get("cancelled_at"):
            status, frac = "cancelled", min(1.0, job.get("cancelled_frac", 0.0))
        elif elapsed < queued_for:
            status, frac = "queued", 0.0
        elif elapsed < self.duration:
            status, frac = "running", (elapsed - queued_for) / (self.duration - queued_for)
        else:
            status, frac = ("failed", 0.5) if self.fail else ("completed", 1.0)
        finished = None
        if status in ("completed", "failed"):
            finished = datetime.fromtimestamp(job["created"] + self.duration, timezone.utc).isoformat().replace("+00:00", "Z")
        elif status == "cancelled":
            finished = job["cancelled_at"]
        return {
            "status": status,
            "fraction": frac,
            "records": int(self.total * frac),
            "started_at": None if status == "queued" else job["created_at"],
            "finished_at": finished,
            "error": "emulated sync failure: source returned 500 while fetching records" if status == "failed" else None,
        }

    def cancel(self, job: dict[str, Any]) -> bool:
        """Cancel a job still queued or running; False when it already ended."""
        if self.view(job)["status"] not in ("queued", "running"):
            return False
        job["cancelled_frac"] = self.view(job)["fraction"]
        job["cancelled_at"] = now_iso()
        return True


class _DropConnection(Exception):
    """Raised after a response has started: uvicorn then closes the socket mid-response."""


class FaultMiddleware:
    """Pure ASGI middleware injecting the configured faults and counting requests."""

    def __init__(self, app: Callable, config: EmulatorConfig) -> None:
        self.app = app
        self.config = config
        self.rng = random.Random(config.seed)
        self.rng_lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def _roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.rng_lock:
            return self.rng.random() < rate

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            return await self.app(scope, receive, send)
        cfg = self.config
        self.counts[f"{scope['method']} {scope['path']}"] += 1
        self.counts["total"] += 1
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000)
        while cfg.gate is not None and not cfg.gate.is_set():
            await asyncio.sleep(0.005)
        if self._roll(cfg.throttle_rate):
            self.faults["429"] += 1
            headers = [] if cfg.retry_after is None else [(b"retry-after", str(cfg.retry_after).encode())]
            return await _send_json(send, 429, {"detail": "Rate limit exceeded. Please retry later."}, headers)
        if self._roll(cfg.fail_rate):
            with self.rng_lock:
                status = self.rng.choice([500, 502, 503])
            self.faults[str(status)] += 1
            return await _send_json(send, status, {"detail": "Internal server error (emulated)"})
        if scope["method"] in ("POST", "PUT", "PATCH") and self._roll(cfg.echo_rate):
            body = b""
            while True:  # a careless platform quoting the submitted input (secrets included) in its error
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            self.faults["echo"] += 1
            text = "rejected (emulated): " + body.decode("utf-8", "replace")
            return await _send_json(send, 422, {"success": False, "error": text, "message": text,
                                                "detail": [{"loc": ["body"], "msg": text, "type": "value_error"}]})
        drop = scope["method"] != "GET" and self._roll(cfg.drop_rate)
        slow = self._roll(cfg.slow_rate)
        if not drop and not slow:
            return await self.app(scope, receive, send)
        buffered: list[dict] = []

        async def capture(message):  # type: ignore[no-untyped-def]
            buffered.append(message)

        await self.app(scope, receive, capture)  # the write commits here
        if drop:
            self.faults["drop"] += 1
            start = next(m for m in buffered if m["type"] == "http.response.start")
            await send(start)
            raise _DropConnection("emulated dropped connection")
        self.faults["slow"] += 1
        await asyncio.sleep(cfg.slow_ms / 1000)
        for message in buffered:
            await send(message)


async def _send_json(send, status: int, body: Any, extra_headers: list | None = None) -> None:  # type: ignore[no-untyped-def]
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": payload})


def with_admin(app: Starlette, middleware: FaultMiddleware, store: Store | None = None) -> None:
    """Add ``/_emulator/stats`` (request and fault counts) and ``/_emulator/state`` (raw data)."""

    async def stats(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            middleware.counts.clear()
            middleware.faults.clear()
        return JSONResponse({"requests": dict(middleware.counts), "faults": dict(middleware.faults)})

    async def state(request: Request) -> JSONResponse:
        return JSONResponse(store.data if store else {})

    app.router.routes.append(Route(f"{ADMIN_PREFIX}/stats", stats, methods=["GET", "DELETE"]))
    app.router.routes.append(Route(f"{ADMIN_PREFIX}/state", state, methods=["GET"]))


def build(type_name: str, config: EmulatorConfig) -> FaultMiddleware:
    """The full ASGI app for one platform: its routes, admin routes, fault injection."""
    import importlib

    module = importlib.import_module(f".{type_name.replace('-', '_')}", __package__)
    app: Starlette = module.create_app(config)
    middleware = FaultMiddleware(app, config)
    with_admin(app, middleware, getattr(app.state, "store", None))
    return middleware


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed, else None (asyncio's own)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def uvicorn_config(app: Callable, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for an emulator: httptools, no lifespan, no access log."""
    return uvicorn.Config(app, http="httptools", lifespan="off", access_log=False, **options)


def serve(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    """Run ``server`` on ``sockets`` until it exits, on :func:`loop_factory`'s loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(server.serve(sockets=sockets))


class _PromptServer(uvicorn.Server):
    """uvicorn's server, stopping when asked instead of on its next polls.

    uvicorn notices ``should_exit`` on a 0.1 s tick, then sleeps 0.1 s before waiting (in 0.1 s
    steps) for open connections: 0.15-0.3 s idle per stop, paid by every test's emulator and every
    ``--sandbox`` run. Here :meth:`wake` ends the tick at once and the shutdown waits for the same
    things (in-flight responses and background tasks, then the listeners) in 5 ms steps. Serving is
    uvicorn's own; the tick (which refreshes the Date header) still runs every 0.1 s.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _woken: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._woken.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    def wake(self) -> None:
        """From any thread, after setting ``should_exit``: the loop notices it now."""
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None:  # otherwise main_loop's first tick sees should_exit
            try:
                loop.call_soon_threadsafe(woken.set)
            except RuntimeError:
                pass  # the loop already closed: the server has stopped

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close, busy ones after their response
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()


class RunningEmulator:
    """An emulator serving on a loopback port in a background thread."""

    def __init__(self, type_name: str, config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.type = type_name
        self.config = config
        self.app = build(type_name, config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted sockets inherit this on Linux; without it Nagle + delayed ACK add ~40 ms per request
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = _PromptServer(uvicorn_config(self.app, log_level="critical", timeout_keep_alive=30))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self._run, name=f"emulator-{type_name}", daemon=True)

    def _run(self) -> None:
        serve(self.server, [self.sock])

    def start(self) -> "RunningEmulator":
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"emulator {self.type} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.server.wake()
        self.thread.join(timeout=5)
        self.sock.close()

    @property
    def stats(self) -> dict[str, Any]:
        return {"requests": dict(self.app.counts), "faults": dict(self.app.faults)}

    def __enter__(self) -> "RunningEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(type_name: str, config: EmulatorConfig, host: str, port: int, *,
                  sock: socket.socket | None = None, ready: Callable[[], None] | None = None) -> None:
    """``reconcile emulate``: serve in the foreground until interrupted. With ``sock`` (bound and
    listening), serve on it and call ``ready`` once the app is built: a message saying "listening"
    is then true (a busy port fails at the bind, before anything is printed)."""
    app = build(type_name, config)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    if sock is None:  # uvicorn binds; its Server.run() picks uvloop the same way (loop="auto")
        uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level="warning")).run()
        return
    server = uvicorn.Server(uvicorn_config(app, log_level="warning"))
    if ready is not None:
        ready()
    serve(server, [sock])
