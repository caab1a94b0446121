"""Windows, reset notation and 429 choice of the limiter, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenancy.limit_counters import Leased, Plan, Slots, denial, rate_headers
from tenancy.limit_windows import format_reset, retry_after, window


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.999, "999ms"),
        (1, "1s"),
        (8.64, "8.64s"),
        (59.5, "59.5s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
        (86_399, "23h59m59s"),
        (-3, "0s"),
    ],
)
def test_resets_read_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_retry_after_is_whole_seconds_rounded_up_at_least_one() -> None:
    assert [retry_after(s) for s in (0, 0.2, 1.0, 1.01, 59.5)] == ["1", "1", "1", "2", "60"]


def test_windows_are_utc_minutes_days_and_months() -> None:
    now = ts("2025-12-31T23:59:30")
    assert window("minute", now) == (ts("2025-12-31T23:59:00"), ts("2026-01-01T00:00:00"))
    assert window("day", now) == (ts("2025-12-31T00:00:00"), ts("2026-01-01T00:00:00"))
    assert window("month", now) == (ts("2025-12-01T00:00:00"), ts("2026-01-01T00:00:00"))
    assert window("month", ts("2024-02-29T12:00:00")) == (
        ts("2024-02-01T00:00:00"),
        ts("2024-03-01T00:00:00"),
    )


def counter(scope: str, kind: str, limit: int, used: int, now: float) -> Leased:
    period = "minute" if kind in ("rpm", "tpm") else kind
    made = Leased(scope, kind, period, limit, 1, 1)  # type: ignore[arg-type]
    made.roll(now)
    made.used = used
    return made


def test_headers_show_the_tightest_limit_and_a_budget_wins_the_429() -> None:
    now = ts("2025-06-15T10:00:15")
    key_rpm = counter("key:key_a", "rpm", 100, 10, now)
    project_rpm = counter("project:p", "rpm", 20, 15, now)
    key_tpm = counter("key:key_a", "tpm", 1000, 100, now)
    budget = counter("project:p", "day", 5000, 5000, now)
    plan = Plan((key_rpm, project_rpm, key_tpm, budget), ())
    assert rate_headers(plan, now) == {
        "x-ratelimit-limit-requests": "20",
        "x-ratelimit-remaining-requests": "5",
        "x-ratelimit-reset-requests": "45s",
        "x-ratelimit-limit-tokens": "5000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "13h59m45s",
    }
    error = denial(plan, [project_rpm, budget], [], now)
    assert error.code == "insufficient_quota" and "project p" in error.message
    assert error.headers["retry-after"] == str(14 * 3600 - 15)
    error = denial(plan, [project_rpm], [], now)
    assert error.code == "rate_limit_exceeded" and error.headers["retry-after"] == "45"
    slots = Slots("key:key_a", 3, 1)
    error = denial(Plan((), (slots,)), [], [slots], now)
    assert error.headers == {"retry-after": "1"} and "limit 3" in error.message
