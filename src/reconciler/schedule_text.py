"""Schedules in words, for plans and status tables."""
from __future__ import annotations

from functools import lru_cache
from typing import Any



@lru_cache(maxsize=1024)
def describe_cron(expr: str) -> str:
    from cron_descriptor import CasingTypeEnum, ExpressionDescriptor, Options  # only plans with a schedule change

    options = Options()
    options.use_24hour_time_format = True
    options.casing_type = CasingTypeEnum.LowerCase
    options.verbose = False
    try:
        return ExpressionDescriptor(expr, options).get_description()
    except Exception:  # cron_descriptor raises several unrelated types on odd input
        return expr


def describe_seconds(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            n = seconds // size
            return f"every {unit}" if n == 1 else f"every {n} {unit}s"
    return f"every {seconds} seconds"


def describe(schedule: dict[str, Any] | None) -> str:
    """Words for a normalised schedule dict (see :meth:`Schedule.as_dict`)."""
    if not schedule:
        return "manual"
    if "cron" in schedule:
        return describe_cron(schedule["cron"])
    if "every" in schedule:
        return describe_seconds(int(schedule["every"]))
    if schedule.get("continuous"):
        return "continuous"
    return "manual"
