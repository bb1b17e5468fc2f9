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
import ipaddress
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
from typing import Any, Callable, Iterable, Mapping
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


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure_http: bool, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReconcileError(f"{what}: url {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure_http:
        raise ReconcileError(
            f"{what}: refusing plain http:// to {parts.hostname} (credentials would cross the network "
            "unencrypted); use https://, or set allow_insecure_http: true on that provider (and the CI must "
            f"allow it: RECONCILE_ALLOWED_HOSTS={allow_entry('http', parts.hostname)})"
        )


def seg(value: object) -> str:
    """One URL path segment: percent-encoded whole (``/``, ``?``, ``#``, ``%`` included), so a target,
    name or platform id can never add segments or a query. ``.`` and ``..`` are refused: servers and
    proxies resolve them even encoded (validation refuses them in manifests; this guards ids)."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ProviderError(f"refusing {text!r} as a URL path segment")
    return quote(text, safe="")


ALLOWED_HOSTS_ENV = "RECONCILE_ALLOWED_HOSTS"


# ``reconcile --allow-host HOST``: the command line is the CI's, like its environment
COMMAND_LINE_HOSTS: list[str] = []

_ENTRY_FORMS = ("HOST, *.domain or an IP address (https only), or http://HOST / http://*.domain "
                "(plain http too); a host, any port: no port, path or other scheme")


@dataclass(frozen=True, slots=True)
class AllowedHost:
    """One entry of ``RECONCILE_ALLOWED_HOSTS`` / ``--allow-host``: a host pattern, and whether the CI
    wrote it with ``http://`` (it consents to the key crossing the network in clear text)."""

    pattern: str  # host name, *.domain or IP address, lowercase, without brackets or trailing dot
    http: bool = False


def _entry(text: str, where: str) -> AllowedHost:
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "https", text
    elif rest.endswith("/"):
        rest = rest[:-1]
    scheme = scheme.lower()
    bad = scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#@ \t")
    if not bad and rest.startswith("["):
        bad = not rest.endswith("]")  # "[::1]:8080": a port
        rest = rest[1:-1]
    elif not bad:
        bad = rest.count(":") == 1  # "host:8080" (an IPv6 address has two or more)
    if bad or not rest:
        # the entry itself is not echoed: it is the CI's environment, and messages never print its values
        raise ReconcileError(f"{where} is not an allowed-host entry; write {_ENTRY_FORMS}")
    return AllowedHost(rest.lower().rstrip("."), http=scheme == "http")


def extra_allowed_hosts(env: Mapping[str, str] | None = None) -> list[AllowedHost]:
    """Hosts the CI allows beyond each platform's official one: ``RECONCILE_ALLOWED_HOSTS`` (and
    ``--allow-host``), comma-separated, each a host name (``api.example.com``), a ``*.example.com``
    wildcard for subdomains, or an IP address, for https; written ``http://HOST`` also for plain http.
    From the environment and command line, never from a manifest."""
    raw = (os.environ if env is None else env).get(ALLOWED_HOSTS_ENV, "").split(",")
    sources = [(f"{ALLOWED_HOSTS_ENV} entry {n}", h) for n, h in enumerate(raw, 1)]
    sources += [(f"--allow-host entry {n}", h) for n, h in enumerate(COMMAND_LINE_HOSTS, 1)]
    return [_entry(h.strip(), where) for where, h in sources if h.strip()]


def host_allowed(host: str, official: Iterable[str], extra: Iterable[str]) -> bool:
    host = host.lower().strip("[]").rstrip(".")
    if is_loopback(host):
        return True
    for pattern in [*official, *extra]:
        pattern = pattern.lower()
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]):
            return True
    return False


def allow_entry(scheme: str, host: str) -> str:
    """What to write in RECONCILE_ALLOWED_HOSTS (or --allow-host) to allow HOST for SCHEME."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}" if scheme == "http" else shown


def check_allowed_host(url: str, *, official_urls: Iterable[str], what: str, where: object = None,
                       env: Mapping[str, str] | None = None) -> None:
    """Refuse, before any call, a url whose host (and, for plain http, scheme) the CI did not choose.

    A pull request may edit a provider's ``url:``; the plan job of that pull request runs with the
    platforms' API keys in its environment, and every call carries the key. So keys go only to the
    platform's official API host, to loopback (emulators, --sandbox), or to hosts the CI lists in
    ``RECONCILE_ALLOWED_HOSTS`` (its environment, not the repository). Plain http to such a host
    needs both sides: the manifest's ``allow_insecure_http`` and the CI's entry written ``http://HOST``
    (a bare entry is the CI's consent to https only, which a manifest setting must not widen).
    """
    parts = urlsplit(url)
    scheme, host = parts.scheme, (parts.hostname or "").lower()
    official = sorted({(urlsplit(u).hostname or "").lower() for u in official_urls if u} - {""})
    prefix = f"{where}: " if where else ""
    if scheme == "http" and host.rstrip(".") in official:
        # allow_insecure_http is a manifest setting: a pull request must not be able to send the
        # key to the official host in clear text (readable by anything on the CI's network path)
        raise ReconcileError(f"{prefix}{what}: {host} is the platform's official API, which is served over "
                             f"https only; write https://{host} (allow_insecure_http does not apply to it)")
    if host_allowed(host, official, []):
        return
    extra = extra_allowed_hosts(env)
    how = (f"allow it from the CI's environment, not from a manifest: {ALLOWED_HOSTS_ENV}={allow_entry(scheme, host)} "
           f"(comma-separated, *.domain for subdomains) or reconcile --allow-host {allow_entry(scheme, host)}")
    matching = [e for e in extra if host_allowed(host, [], [e.pattern])]
    if matching:
        if scheme != "http" or any(e.http for e in matching):
            return
        raise ReconcileError(
            f"{prefix}{what}: refusing plain http:// to {host}: the CI allows it for https only, and a "
            f"manifest's allow_insecure_http cannot change that (the api key would cross the network "
            f"unencrypted). Write https://, or, if this host serves plain http only and the CI agrees, {how}")
    allowed = ", ".join(official + ["loopback"])
    raise ReconcileError(
        f"{prefix}{what}: refusing to send credentials to {host or url!r}: not an allowed host (allowed: {allowed}). "
        f"If this host is yours, {how}")


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
