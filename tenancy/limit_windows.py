"""Fixed UTC windows of the limits (a minute for rpm/tpm, a day or a month for budgets) and how OpenAI
writes the time until they reset (``x-ratelimit-reset-*``: ``"1s"``, ``"6m0s"``, ``"20ms"``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

Period = Literal["minute", "day", "month"]

MINUTE_S = 60
DAY_S = 86_400


def window(period: Period, now: float) -> tuple[int, int]:
    """``(start, end)`` in unix seconds of the window holding ``now``. Fixed windows aligned on UTC:
    every process computes the same bounds from its clock, so they share one counter row per window."""
    if period == "minute":
        start = int(now // MINUTE_S) * MINUTE_S
        return start, start + MINUTE_S
    if period == "day":
        start = int(now // DAY_S) * DAY_S
        return start, start + DAY_S
    moment = datetime.fromtimestamp(now, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp()), int(following.timestamp())


def format_reset(seconds: float) -> str:
    """Go's duration notation, as OpenAI's ``x-ratelimit-reset-*`` headers use it."""
    total_ms = max(0, round(seconds * 1000))
    if total_ms == 0:
        return "0s"
    if total_ms < 1000:
        return f"{total_ms}ms"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def retry_after(seconds: float) -> str:
    """Whole seconds, rounded up, at least 1 (``Retry-After`` takes an integer)."""
    return str(max(1, math.ceil(seconds)))
