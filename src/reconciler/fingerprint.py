"""Keyed credential fingerprints: detect a rotated secret without storing anything guessable.

The state cannot keep credentials (they are write-only on every platform and must never be
stored), yet a rotated secret must plan an update. So the state keeps
``v1:<key id>:<HMAC-SHA256(key, canonical credentials)>``. A plain hash would let anyone holding the
state confirm a guessed secret offline; the HMAC key is never in the state, so it cannot.

The key is ``RECONCILE_FINGERPRINT_KEY`` when set (recommended: a CI secret shared by every runner
of one state), else the provider's own API key, which whoever can apply already holds. The short
key id lets a plan tell "the key changed, credentials will be re-sent" from "the secret changed".
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from functools import lru_cache
from typing import Mapping

from .model import Secret

ENV_KEY = "RECONCILE_FINGERPRINT_KEY"
# json.dumps with options builds an encoder per call; a plan fingerprints every connector
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def fingerprint_key(api_key: Secret | None) -> bytes:
    explicit = os.environ.get(ENV_KEY)
    if explicit:
        return explicit.encode()
    if api_key is not None:
        return api_key.reveal().encode()
    return b"connector-reconciler/no-key"


@lru_cache(maxsize=64)  # one HMAC per fingerprint instead of two: the key id is the same for a whole provider
def key_id(key: bytes) -> str:
    return hmac.new(key, b"connector-reconciler key id", hashlib.sha256).hexdigest()[:8]


@lru_cache(maxsize=64)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(key: bytes, message: bytes) -> str:
    # a copy of the keyed state, not hmac.digest: that one-shot releases the GIL around every call,
    # and a plan fingerprints while its listing threads decode pages, so each of 10,000 calls
    # waited for a switch interval to get the GIL back (0.05 s of HMACs took 0.27 s)
    mac = _keyed(key).copy()
    mac.update(message)
    return mac.hexdigest()


def fingerprint(name: str, credentials: Mapping[str, Secret], key: bytes) -> str | None:
    if not credentials:
        return None
    canonical = _canonical({k: v.reveal() for k, v in credentials.items()})
    mac = _mac(key, f"{name}\0{canonical}".encode())
    return f"v1:{key_id(key)}:{mac}"


def values_fingerprint(label: str, values: Mapping[str, str], key: bytes) -> str:
    """A keyed fingerprint of plain write-only values (a platform stores them, never returns them):
    compared like credentials, yet not bound to the connector's name, so a rename leaves it valid.
    Shortened to 128 bits: it is shown in plans."""
    canonical = _canonical(dict(values))
    mac = _mac(key, f"{label}\0{canonical}".encode())[:32]
    return f"v1:{key_id(key)}:{mac}"


def renamed(stored: str | None, old: str, new: str, credentials: Mapping[str, Secret], key: bytes) -> str | None:
    """The fingerprint a state entry renamed from ``old`` to ``new`` should carry.

    Fingerprints are bound to the connector's name, so a rename alone would read as rotated
    credentials. When ``stored`` proves the credentials are the same as under the old name, it is
    re-bound to the new name; otherwise it is kept as it is (and a real rotation still plans an update).
    """
    if stored is not None and stored == fingerprint(old, credentials, key):
        return fingerprint(new, credentials, key)
    return stored


def same_key(stored: str | None, key: bytes) -> bool:
    return bool(stored) and stored.split(":")[1:2] == [key_id(key)]  # type: ignore[union-attr]
