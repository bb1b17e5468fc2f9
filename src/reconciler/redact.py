"""Scrubbing of secret values from every byte the tool writes, and masking of environment values.

Secrets register here when they are loaded; :func:`scrub` replaces each registered value, and its
base64 and URL-encoded forms, with ``(sensitive)``. Output paths (CLI output, logs, error
messages, plan and state files) pass text through :func:`scrub` as a second line of defence behind
the :class:`~reconciler.model.Secret` wrapper. Validation refuses secrets shorter than
:data:`MIN_SECRET_LENGTH` characters: a shorter value would mask ordinary words everywhere, and
not masking it would print it.

Non-secret connector fields may read ``${VAR}`` too, and a pull request can point one at any
variable of the CI (``description: "${AWS_SECRET_ACCESS_KEY}"``). Their values register with
:func:`register_env` and plans show them as ``(from $VAR)``, unless the CI lists the variable in
``RECONCILE_PUBLIC_VARS``. That masking is for display (plans, PR comments, saved plans, errors);
the state keeps real values, since it must compare them.
"""
from __future__ import annotations

import base64
import fnmatch
import json
import re
import threading
from typing import Any, Mapping
from urllib.parse import quote, quote_plus

MASK = "(sensitive)"
MIN_SECRET_LENGTH = 4  # validation refuses shorter secrets (manifest/resolve.py)
_MIN_LEN = MIN_SECRET_LENGTH
PUBLIC_VARS_ENV = "RECONCILE_PUBLIC_VARS"

_lock = threading.Lock()
_forms: set[str] = set()
# what scrub uses, made from _forms on first use after a change, as one tuple so that a reader in
# another thread never pairs a regex with the probes of another set: (regex, probes, their UTF-8)
_compiled: tuple[re.Pattern[str], tuple[str, ...] | None, tuple[bytes, ...] | None] | None = None
# A text holding no probe needs no regex pass, and most texts (the state's 1 MB per 1,000 connectors
# among them) hold no secret: a substring search per probe costs ~0.2 ms per MB, the regex's scan
# (its alternation tried at nearly every position) 4-7 ms. Beyond this many probes their searches
# would cost about the regex pass, so none are used.
_MAX_PROBES = 32
_env: dict[str, str] = {}  # value of a non-public variable -> its name
_env_pattern: re.Pattern[str] | None = None


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
    global _compiled
    if not isinstance(value, str) or len(value) < _MIN_LEN:
        return
    if value in _forms:  # registered already (10,000 connectors often share one token)
        return
    with _lock:
        new = _encoded_forms(value) - _forms
        if new:
            _forms.update(new)
            _compiled = None


def _probes(forms: set[str]) -> tuple[str, ...] | None:
    """The forms that contain no other form: a text that holds any form holds one of these (the
    padded base64 holds the unpadded one, an escaped form often the raw value). None when there are
    more than _MAX_PROBES."""
    probes: list[str] = []
    for form in sorted(forms, key=len):
        if not any(p in form for p in probes):
            probes.append(form)
            if len(probes) > _MAX_PROBES:
                return None
    return tuple(probes)


def _compile() -> tuple[re.Pattern[str], tuple[str, ...] | None, tuple[bytes, ...] | None]:
    global _compiled
    with _lock:
        if _compiled is None:
            # longest first so that a value containing another is masked whole
            alts = sorted(_forms, key=len, reverse=True)
            probes = _probes(_forms)
            try:
                utf8 = None if probes is None else tuple(p.encode("utf-8") for p in probes)
            except UnicodeEncodeError:  # a lone surrogate has no UTF-8 to look for: always decode
                utf8 = None
            _compiled = (re.compile("|".join(re.escape(a) for a in alts)), probes, utf8)
        return _compiled


def scrub(text: str) -> str:
    if not text or not _forms:
        return text
    pattern, probes, _ = _compiled or _compile()
    if probes is not None and not any(p in text for p in probes):
        return text
    return pattern.sub(MASK, text)


def scrub_utf8(data: bytes) -> bytes:
    """``scrub`` of DATA as UTF-8 text, encoded back; DATA itself (no decoding, no copy) when it
    holds no registered value, which is searched for in the bytes (a form's UTF-8 is found in the
    bytes exactly where the form is found in the text)."""
    if not data or not _forms:
        return data
    _, _, probes = _compiled or _compile()
    if probes is not None and not any(p in data for p in probes):
        return data
    return scrub(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def clear() -> None:
    """Forget every registered value (tests, and the Python API between independent runs)."""
    global _compiled, _env_pattern
    with _lock:
        _forms.clear()
        _compiled = None
        _env.clear()
        _env_pattern = None


# --- values read from the environment into non-secret fields ---------------------------------------

def public_vars(env: Mapping[str, str]) -> list[str]:
    """``RECONCILE_PUBLIC_VARS``: names (or ``PREFIX_*`` patterns) whose values plans may show."""
    return [v.strip() for v in env.get(PUBLIC_VARS_ENV, "").split(",") if v.strip()]


def is_public(name: str, env: Mapping[str, str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in public_vars(env))


def register_env(name: str, value: str) -> None:
    global _env_pattern
    if not value or value.isspace():
        return
    with _lock:
        if _env.get(value) != name:
            _env.setdefault(value, name)
            _env_pattern = None


def env_label(name: str) -> str:
    return f"(from ${name})"


def _env_regex() -> re.Pattern[str] | None:
    global _env_pattern
    pattern = _env_pattern
    if pattern is None and _env:
        with _lock:
            # a value shorter than MIN_SECRET_LENGTH is masked only when it is a whole string
            # (masking "dev" inside every word would garble the plan)
            alts = sorted((v for v in _env if len(v) >= _MIN_LEN), key=len, reverse=True)
            pattern = _env_pattern = re.compile("|".join(re.escape(a) for a in alts)) if alts else re.compile(r"(?!)")
    return pattern


def mask_env_text(text: str) -> str:
    """TEXT with every (long enough) non-public environment value replaced by ``(from $VAR)``."""
    pattern = _env_regex()
    if not text or pattern is None:
        return text
    return pattern.sub(lambda m: env_label(_env[m.group()]), text)


def mask_env(value: Any) -> Any:
    """A plan value (string, list, mapping) with non-public environment values masked."""
    if not _env:
        return value
    if isinstance(value, str):
        name = _env.get(value)
        return env_label(name) if name is not None else mask_env_text(value)
    if isinstance(value, dict):
        return {k: mask_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_env(v) for v in value]
    return value
