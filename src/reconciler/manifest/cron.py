"""Croniter's verdict on a five-field cron: valid or not, and whether it ever fires.

Thousands of connectors share a handful of schedules, so each text is judged once. Judging is
slow to start: importing croniter costs ~18 ms (it runs the `file` command on the interpreter to
learn whether it is 32-bit) and each text ~0.15 ms. A manifest reader process (``parallel``)
therefore judges the texts of the files it parsed while this process imports what it needs next,
and :func:`learn` takes its verdicts: this process then never imports croniter at all.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, NamedTuple

MAX_KNOWN = 4096  # distinct texts remembered; past it (a hostile manifest) each is judged again


class Verdict(NamedTuple):
    valid: bool
    fires: bool  # February 31st (``0 0 31 2 *``) is valid and never does


_known: dict[str, Verdict] = {}


def verdict(cron: str) -> Verdict:
    known = _known.get(cron)
    if known is None:
        known = _judge(cron)
        if len(_known) < MAX_KNOWN:
            _known[cron] = known
    return known


def _judge(cron: str) -> Verdict:
    from croniter import croniter
    from croniter.croniter import CroniterBadDateError

    if not croniter.is_valid(cron):
        return Verdict(False, False)
    try:
        croniter(cron, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterBadDateError, ValueError, OverflowError):
        return Verdict(True, False)
    return Verdict(True, True)


def judge_texts(data: Iterable[Any]) -> dict[str, Verdict]:
    """The verdict on every five-field text under a ``cron`` key anywhere in ``data`` (parsed
    documents), for :func:`learn` in another process. Where a text sits does not matter: a verdict
    depends on the text alone, and one nobody asks about is merely unused."""
    found: dict[str, Verdict] = {}
    stack = list(data)
    while stack and len(found) < MAX_KNOWN:
        value = stack.pop()
        if isinstance(value, dict):
            cron = value.get("cron")
            if isinstance(cron, str) and cron not in found and len(cron.split()) == 5:
                found[cron] = verdict(cron)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def learn(verdicts: object) -> None:
    """Take verdicts :func:`judge_texts` returned (unpickled from a reader process)."""
    if not isinstance(verdicts, dict):
        return
    for cron, judged in verdicts.items():
        if len(_known) >= MAX_KNOWN:
            return
        if isinstance(cron, str) and isinstance(judged, tuple) and len(judged) == 2:
            _known.setdefault(cron, Verdict(bool(judged[0]), bool(judged[1])))
