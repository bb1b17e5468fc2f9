"""Scrubbing of secret values from every byte the tool writes.

Secrets register here when they are loaded; :func:`scrub` replaces each registered value, and its
base64 and URL-encoded forms, with ``(sensitive)``. Output paths (CLI output, logs, error
messages, plan and state files) pass text through :func:`scrub` as a second line of defence behind
the :class:`~reconciler.model.Secret` wrapper.
"""
from __future__ import annotations

import base64
import json
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "(sensitive)"
_MIN_LEN = 4  # shorter values would mask ordinary words; such secrets are rejected by validation

_lock = threading.Lock()
_forms: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _encoded_forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote_plus(value)}
    # escaped as a platform's error may quote it back from a JSON body (or as Python shows it)
    forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(raw).decode()
        forms.add(b)
        forms.add(b.rstrip("="))
    return {f for f in forms if len(f) >= _MIN_LEN}


def register(value: str) -> None:
    global _pattern
    if not isinstance(value, str) or len(value) < _MIN_LEN:
        return
    if value in _forms:  # registered already (10,000 connectors often share one token)
        return
    with _lock:
        new = _encoded_forms(value) - _forms
        if new:
            _forms.update(new)
            _pattern = None


def scrub(text: str) -> str:
    global _pattern
    if not text or not _forms:
        return text
    pattern = _pattern
    if pattern is None:
        with _lock:
            # longest first so that a value containing another is masked whole
            alts = sorted(_forms, key=len, reverse=True)
            pattern = _pattern = re.compile("|".join(re.escape(a) for a in alts))
    return pattern.sub(MASK, text)


def clear() -> None:
    """Forget every registered value (tests, and the Python API between independent runs)."""
    global _pattern
    with _lock:
        _forms.clear()
        _pattern = None
