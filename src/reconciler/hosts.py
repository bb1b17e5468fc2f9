"""Where the platforms' API keys may go: a pull request may edit a provider's ``url:``, and the job
that plans it runs with the keys in its environment. The official host of each platform, loopback,
and what the CI allows (``RECONCILE_ALLOWED_HOSTS``, ``--allow-host``), never what a manifest says.

Kept apart from the HTTP client (:mod:`reconciler.http`): validation checks urls too, and must not
pay for importing httpx.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from .errors import ReconcileError


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
