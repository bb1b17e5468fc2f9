"""Durations like ``30s``, ``15m``, ``1h``, ``1d`` and combinations (``1h30m``), in seconds."""
from __future__ import annotations

import re

_DURATION = re.compile(r"(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def parse_duration(text: str) -> int:
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"not a duration: {text!r} (write 30s, 15m, 1h, 1d or 1h30m)")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s
