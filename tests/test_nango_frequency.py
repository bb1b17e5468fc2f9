"""Pure logic of the Nango adapter: frequency notation, cron conversion, schedule checks."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from reconciler.emulators.nango import parse_frequency as emulator_parse
from reconciler.errors import ReconcileError
from reconciler.model import Schedule
from reconciler.providers.nango import cron_interval, format_frequency, parse_frequency, schedule_seconds


@pytest.mark.parametrize("text, seconds", [
    ("every hour", 3600), ("every 30 minutes", 1800), ("every 1d", 86400), ("every 2h", 7200),
    ("every half hour", 1800), ("every day", 86400), ("1 week", 604800), ("every 45s", 45), ("30m", 1800),
])
def test_parse_frequency(text, seconds):
    assert parse_frequency(text) == seconds
    assert emulator_parse(text) == seconds


@pytest.mark.parametrize("text", ["", "sometimes", "every fortnight", "every -1h", None])
def test_unreadable_frequency(text):
    assert parse_frequency(text) is None


@pytest.mark.parametrize("seconds, text", [(3600, "every 1 hour"), (1800, "every 30 minutes"),
                                           (86400 * 2, "every 2 days"), (45, "every 45 seconds")])
def test_format_frequency(seconds, text):
    assert format_frequency(seconds) == text


@given(st.integers(min_value=30, max_value=86400 * 60))
def test_format_round_trips_through_both_parsers(seconds):
    text = format_frequency(seconds)
    assert parse_frequency(text) == seconds
    assert emulator_parse(text) == seconds


@pytest.mark.parametrize("cron, seconds", [
    ("*/30 * * * *", 1800), ("* * * * *", 60), ("0 * * * *", 3600), ("15 */6 * * *", 21600), ("0 */1 * * *", 3600),
])
def test_cron_plain_intervals(cron, seconds):
    assert cron_interval(cron) == seconds


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/7 * * * *", "0 */5 * * *", "0 0 * * 1", "nonsense", "61 * * * *"])
def test_cron_with_a_phase_is_not_an_interval(cron):
    assert cron_interval(cron) is None


def test_schedule_seconds():
    assert schedule_seconds(Schedule(manual=True), "s") is None
    assert schedule_seconds(Schedule(every=90), "s") == 90
    assert schedule_seconds(Schedule(cron="*/15 * * * *"), "s") == 900
    with pytest.raises(ReconcileError, match="minimum of 30 seconds"):
        schedule_seconds(Schedule(every=10), "s")
    with pytest.raises(ReconcileError, match="not a fixed interval"):
        schedule_seconds(Schedule(cron="0 3 * * *"), "s")
    with pytest.raises(ReconcileError, match="continuous"):
        schedule_seconds(Schedule(continuous=True), "s")


def test_whole_metadata_writes_carry_platform_owned_keys():
    from reconciler.providers.nango import _with_unowned

    unowned = {"scope.region": "eu", "scope.limits.max": 3, "scope.team": "theirs", "description": "not scope"}
    # declared keys win; nested platform-owned paths are rebuilt; other projection paths are not metadata
    assert _with_unowned({"team": "data"}, unowned) == {"team": "data", "region": "eu", "limits": {"max": 3}}


def test_throttle_wait_reads_nangos_floored_retry_after():
    """ratelimit.middleware.ts (NangoHQ/nango): Retry-After = floor(ms before the window reopens / 1000)."""
    import time

    import httpx

    from reconciler.providers.nango import NangoHttp

    http = NangoHttp("http://127.0.0.1:9")
    try:
        assert http._throttle_wait(httpx.Response(429, headers={"retry-after": "0"})) == 0.5  # "under a second"
        assert http._throttle_wait(httpx.Response(429, headers={"retry-after": "7"})) == 7.5
        assert http._throttle_wait(httpx.Response(429, headers={"retry-after": "0.05"})) == 0.05  # not floored
        reset = str(int(time.time()) + 3)
        assert 1.0 < http._throttle_wait(httpx.Response(429, headers={"x-ratelimit-reset": reset})) <= 3.0
    finally:
        http.close()
