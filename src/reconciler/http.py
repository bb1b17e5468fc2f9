"""The one HTTP client layer every provider adapter uses.

Timeouts on every call, retries with exponential backoff and full jitter on 429/5xx/connection
errors (honouring ``Retry-After``), no retry on other 4xx, auth headers, per-kind call counting,
transport safety (TLS verified, no plain ``http://`` off loopback unless allowed, auth never
carried across a redirect to another host) and redaction of secrets from every error message.

A request that is not safe to repeat (a create without an idempotency key or upsert semantics) is
never retried blindly: when its outcome is unknown the client raises :class:`OutcomeUnknown` and
the engine looks the object up before trying again.
"""
from __future__ import annotations

import email.utils
import logging
import os
import random
import ssl
import sys
import threading
import time
import types
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

# httpx's package __init__ imports its own command line (httpx._main: click, rich, pygments), over half
# of `import httpx` and a tenth of every `reconcile` start; the reconciler never runs that command
sys.modules.setdefault("httpx._main", types.ModuleType("httpx._main", "httpx's CLI, not loaded by reconciler"))
from ._process_flags import AS_CLI_PROCESS  # noqa: E402

if AS_CLI_PROCESS and "httpcore" not in sys.modules and "trio" not in sys.modules:
    # httpcore imports trio at its own import whenever trio is installed, for async clients run
    # under trio: 45 ms of every start of a CLI that never runs async. Only in our own process
    # (a program calling us in-process may use trio); `import trio` works again afterwards.
    sys.modules["trio"] = None  # type: ignore[assignment]  # `import trio` raises ImportError
    try:
        import httpcore  # noqa: F401
    finally:
        del sys.modules["trio"]
import httpx  # noqa: E402

# the socket layer encodes every host name with the idna codec, imported at the first connection:
# in a plan, by a listing thread, whose import (a dozen file reads, each giving up the GIL) then
# waits out the main thread's digest one switch interval at a time: ~10 ms before the first call
import encodings.idna  # noqa: E402,F401

from . import redact
from .errors import NotFound, OutcomeUnknown, ProviderError, ReconcileError
from .hosts import check_url

log = logging.getLogger("reconciler.http")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    # RECONCILE_RETRY_BASE_DELAY (seconds, 0-10) scales every backoff: a CI that would rather fail
    # fast, or a test suite that injects hundreds of faults, sets it lower
    base_delay: float = field(default_factory=lambda: env_seconds("RECONCILE_RETRY_BASE_DELAY", 0.2, 10.0))
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def backoff(self, attempt: int) -> float:
        # full jitter: spreads a herd of parallel retries instead of synchronising them
        return random.uniform(0, min(self.max_delay, self.base_delay * (2 ** attempt)))


def env_seconds(name: str, default: float, most: float, *, zero: bool = True) -> float:
    """A duration from the environment (NAME unset: DEFAULT), refused unless 0 (or above, without
    ``zero``) up to MOST seconds."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value if zero else 0 < value) or not value <= most:  # NaN fails this too
        raise ReconcileError(f"{name}={raw!r} is not a number of seconds between 0 and {most:g}")
    return value


def seg(value: object) -> str:
    """One URL path segment: percent-encoded whole (``/``, ``?``, ``#``, ``%`` included), so a target,
    name or platform id can never add segments or a query. ``.`` and ``..`` are refused: servers and
    proxies resolve them even encoded (validation refuses them in manifests; this guards ids)."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ProviderError(f"refusing {text!r} as a URL path segment")
    return quote(text, safe="")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _certificate_error(exc: BaseException) -> str | None:
    """The verification failure behind a transport error, if that is what it is."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


class CallCounter:
    """Thread-safe count of API calls by kind (list, get, create, update, delete, sync, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


ErrorParser = Callable[[httpx.Response], str]
# says whether a retryable-looking answer (a 5xx) is one no retry can cure (a platform's store refusing a value)
PermanentCheck = Callable[[httpx.Response], bool]


def default_error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if key in body:
                return str(body[key])
    return str(body)[:500]


class _NoCookies(httpx.Cookies):
    """A jar that never keeps anything: the platforms' APIs authenticate by header, so a cookie a
    server (or anything on its path) sets is never sent back on the next call, and no response pays
    for the cookie parsing (``extract_cookies`` builds a urllib request per response)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _Client(httpx.Client):
    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, _cookies: object) -> None:
        raise TypeError("the reconciler's HTTP client keeps no cookies")


_DRAINED = httpx.ByteStream(b"")


class HttpClient:
    """A small wrapper over :class:`httpx.Client` shared by all of one provider's calls."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        what: str = "provider",
        allow_insecure_http: bool = False,
        timeout: float = 30.0,
        parallelism: int = 8,
        retry: RetryPolicy | None = None,
        counter: CallCounter | None = None,
        error_parser: ErrorParser = default_error_message,
        transport: httpx.BaseTransport | None = None,
        permanent: PermanentCheck | None = None,
    ) -> None:
        check_url(base_url, allow_insecure_http=allow_insecure_http, what=what)
        self.what = what
        self.retry = retry or RetryPolicy()
        self.counter = counter or CallCounter()
        self.error_parser = error_parser
        self.permanent = permanent
        self._origin = urlsplit(base_url)[:2]
        limits = httpx.Limits(max_connections=max(parallelism, 1) * 2, max_keepalive_connections=max(parallelism, 1) * 2)
        self._base = base_url.rstrip("/") + "/"
        self._client = _Client(
            base_url=self._base,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=limits,
            follow_redirects=False,  # redirects are followed by hand, same origin only
            # certificates are always verified; an http:// origin (loopback) never reaches TLS, as
            # redirects stay on the same scheme and host, so it skips loading the CA bundle (~0.1 s)
            verify=self._origin[0] == "https",
            transport=transport,
        )
        # what Client.build_request would work out again for every call: the default headers merged,
        # the timeout, the absolute URL of a path (parsed once per distinct path)
        self._headers = self._client.headers
        self._extensions = {"timeout": self._client.timeout.as_dict()}
        self._url = lru_cache(maxsize=64)(lambda path: httpx.URL(self._base + path))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        safe_to_retry: bool | None = None,
        ok_404: bool = False,
    ) -> httpx.Response | None:
        """Send one logical call (retrying as policy allows) and return the 2xx response.

        ``safe_to_retry`` defaults to True for every method but POST. Raises :class:`NotFound`
        on 404 (or returns None with ``ok_404``), :class:`ProviderError` on other refusals and
        :class:`OutcomeUnknown` when an unsafe call may have taken effect.
        """
        if safe_to_retry is None:
            safe_to_retry = method.upper() != "POST"
        path = path.lstrip("/")
        attempt = 0
        while True:
            self.counter.add(kind)
            sent = False
            try:
                response = self._send(method, path, json=json, params=params, headers=headers)
                sent = True
            except httpx.TimeoutException as exc:
                failure: str = f"timed out ({type(exc).__name__})"
                # a connect timeout never reached the server: always safe to repeat
                maybe_applied = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            except httpx.TransportError as exc:
                cert = _certificate_error(exc)
                if cert is not None:  # not transient: retrying cannot help
                    raise ProviderError(
                        f"{self.what}: {method} /{path}: the server's TLS certificate could not be verified ({cert}); "
                        "check the provider's url (a proxy or a self-signed certificate?)") from None
                failure = f"connection error ({type(exc).__name__}: {exc})"
                maybe_applied = not isinstance(exc, httpx.ConnectError)
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status == 404 and ok_404:
                    return None
                # a platform may quote the request back: secrets and values of non-public variables masked
                message = redact.mask_env_text(redact.scrub(self.error_parser(response)))
                if status not in RETRYABLE_STATUS or (self.permanent is not None and self.permanent(response)):
                    exc_type = NotFound if status == 404 else ProviderError
                    raise exc_type(f"{self.what}: {method} /{path} -> {status}: {message}", status=status)
                failure = f"HTTP {status}: {message}"
                # 429 means "not processed"; a 5xx on an unsafe call might have been applied
                maybe_applied = status != 429
                delay = _retry_after(response)
            if not sent:
                delay = None
            attempt += 1
            if maybe_applied and not safe_to_retry:
                raise OutcomeUnknown(
                    f"{self.what}: {method} /{path}: {redact.scrub(failure)}; the call may have taken effect",
                    retryable=True,
                )
            if attempt >= self.retry.attempts:
                raise ProviderError(
                    f"{self.what}: {method} /{path} failed after {attempt} attempts: {redact.scrub(failure)}",
                    retryable=True,
                )
            wait = min(delay, self.retry.max_retry_after) if delay is not None else self.retry.backoff(attempt)
            log.info("%s %s /%s: %s; retry %d in %.2fs", self.what, method, path, redact.scrub(failure), attempt, wait)
            time.sleep(wait)

    def _build(self, method: str, url: httpx.URL, *, json: Any, params: Mapping[str, Any] | None,
               headers: Mapping[str, str] | None) -> httpx.Request:
        if headers:
            merged = self._headers.copy()
            merged.update(headers)
        return httpx.Request(method, url, params=params, json=json, headers=merged if headers else self._headers,
                             extensions=self._extensions)

    def _sent(self, request: httpx.Request) -> httpx.Response:
        response = self._client.send(request)
        # httpx leaves the read response in a reference cycle with its stream (which keeps it to
        # time it): ~40 objects per call that only the cyclic collector can free, whose pauses
        # then stop every worker of an apply at once (25 ms mid-run at 1,000 creates). The body is
        # read and the stream closed: nothing reads the stream again.
        response.stream = _DRAINED
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._sent(self._build(method, self._url(path), **kwargs))
        hops = 0
        while response.is_redirect and hops < 5:
            target = response.next_request.url if response.next_request else None
            if target is None or (target.scheme, target.netloc.decode()) != self._origin:
                raise ProviderError(
                    f"{self.what}: {method} /{path} redirected to another host ({target.host if target else '?'}); "
                    "not following it, so that credentials stay with the configured host",
                    status=response.status_code,
                )
            response = self._sent(self._build(method, target, **kwargs))
            hops += 1
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response is None or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"{self.what}: {method} /{path.lstrip('/')} answered with non-JSON content") from exc
