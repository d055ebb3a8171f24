"""The limiter's windows on a made-up clock: every documented limit, exactly."""

from __future__ import annotations

import pytest

from leadrelay.sandbox.limits import RateLimiter, format_retry_after


def fill(limiter: RateLimiter, count: int, every: float, *, is_write: bool = False) -> float:
    """Admit ``count`` calls ``every`` seconds apart from t=0 (all must pass); the next call's time."""
    for n in range(count):
        assert limiter.admit(n * every, 1.0, is_write) == 0, f"call {n + 1} was refused"
    return count * every


def test_calls_must_be_100_ms_apart() -> None:
    limiter = RateLimiter()

    assert limiter.admit(0.0, 1.0, False) == 0
    assert limiter.admit(0.04, 1.0, False) == pytest.approx(0.06)
    assert limiter.admit(0.1, 1.0, False) == 0  # the refused call did not count


def test_120_calls_per_minute() -> None:
    limiter = RateLimiter()
    now = fill(limiter, 120, every=0.1)

    assert limiter.admit(now, 1.0, False) == pytest.approx(60 - now)
    assert limiter.admit(60.0, 1.0, False) == 0


def test_5000_calls_per_hour() -> None:
    limiter = RateLimiter()
    now = fill(limiter, 5_000, every=0.5)  # 120 a minute

    assert limiter.admit(now, 1.0, False) == pytest.approx(3_600 - now)


def test_60_writes_per_minute_leave_reads_alone() -> None:
    limiter = RateLimiter()
    now = fill(limiter, 60, every=0.1, is_write=True)

    assert limiter.admit(now, 1.0, True) == pytest.approx(60 - now)
    assert limiter.admit(now, 1.0, False) == 0


def test_5000_writes_per_day() -> None:
    limiter = RateLimiter()
    now = fill(limiter, 5_000, every=1.0, is_write=True)  # 60 a minute, 3,600 an hour

    assert limiter.admit(now, 1.0, True) == pytest.approx(86_400 - now)
    assert limiter.admit(now + 0.1, 1.0, False) == 0


def test_speed_shortens_every_window() -> None:
    limiter = RateLimiter()
    for n in range(60):
        assert limiter.admit(n * 0.005, 20.0, True) == 0

    assert limiter.admit(0.3, 20.0, True) == pytest.approx(3 - 0.3)
    assert limiter.admit(0.3, 20.0, False) == 0
    assert limiter.admit(0.301, 20.0, False) == pytest.approx(0.004)


@pytest.mark.parametrize(
    ("seconds", "whole", "header"),
    [
        (0.06, True, "1"),
        (1.0, True, "1"),
        (47.2, True, "48"),
        (0.342, False, "0.35"),
        (0.3, False, "0.3"),
        (2.0, False, "2"),
    ],
)
def test_retry_after_is_rounded_up(seconds: float, whole: bool, header: str) -> None:
    assert format_retry_after(seconds, whole=whole) == header
