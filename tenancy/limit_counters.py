"""One process's share of the shared limit counters, and the permits and 429s made from them.

Every field here is guarded by the limiter's lock; nothing in this module touches the database.

A ``Leased`` counter (requests or tokens of one scope in one window) spends from ``balance``: what this
process leased from the shared counter and has not used. A request is admitted while the balance holds
at least 1 and reserves its cost at admit (1 for rpm; for tokens, the running mean of the scope's
requests, as they are not known before the request ends) and ``finish`` settles the difference.
Tokens beyond the lease put ``balance`` below zero: a debt the flusher charges to the shared counter,
so every process sees it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, NamedTuple

from core.errors import RateLimitError
from tenancy.limit_store import CounterKey, carried
from tenancy.limit_windows import Period, format_reset, retry_after, window

if TYPE_CHECKING:
    from collections.abc import Callable

Kind = Literal["rpm", "tpm", "day", "month"]
ESTIMATE_WEIGHT = 0.2  # how fast the per-request token estimate follows what requests used


def share(limit: int, fraction: float) -> int:
    return max(1, math.ceil(limit * fraction))


@dataclass(eq=False, slots=True)
class Leased:
    scope: str  # "key:<key id>" or "project:<name>"
    kind: Kind
    period: Period
    limit: int
    block: int  # how much one lease asks for beyond what the waiting requests need
    flush_at: int  # a debt this large is charged at once
    window_start: int = 0
    window_end: int = 0
    balance: int = 0  # leased and unspent (below zero: spent beyond the lease, not charged yet)
    used: int = 0  # the shared counter as last seen (every process's leases and charges)
    sliding: bool = False  # the previous window's use carries into this one, fading as it ends
    previous: int = 0  # the previous window's shared counter, as the last lease saw it
    exhausted: bool = False  # the shared counter is full: no lease can succeed before `retry_at`
    retry_at: float = 0.0  # when room for one request appears (a fixed window: its end)
    estimate: float = 0.0  # tokens per request of this scope (its mean, recent ones weighing most)
    sampled: bool = False  # a request of this scope has finished in this process
    fetch: Future[None] | None = None  # the lease being taken (admits needing it share it)
    waiting: int = 0  # admits waiting for that lease
    # Ended windows' balances, for the flusher: a debt is charged to the window it was spent in, an
    # unused lease given back to it (a sliding window's carry then counts what was used, not leased).
    unsettled: list[tuple[CounterKey, int]] = field(default_factory=list)

    def roll(self, now: float) -> None:
        if not self.window_start <= now < self.window_end:
            if self.balance and self.window_end:
                self.unsettled.append((self.key(), -self.balance))
            self.window_start, self.window_end = window(self.period, now)
            self.balance = self.used = self.previous = 0
            self.exhausted = False
        elif self.exhausted and now >= self.retry_at:  # the carry has faded enough: ask again
            self.exhausted = False

    def carry_weight(self, now: float) -> float:
        """The share of the previous window still inside the trailing window at ``now``."""
        if not self.sliding:
            return 0.0
        length = self.window_end - self.window_start
        return min(1.0, max(0.0, (self.window_end - now) / length))

    def carry(self, now: float) -> int:
        return carried(self.previous, self.carry_weight(now))

    def room_at(self, now: float, need: int) -> float:
        """When ``need`` more fits under the cap, if nothing else is used meanwhile: within this window
        as the carry fades, else in the next one as this window's use fades (a fixed window: its end)."""
        if not self.sliding:
            return float(self.window_end)
        length = self.window_end - self.window_start
        left = self.limit - self.used - need  # room once the carry is gone
        if left >= 0 and self.previous > 0:
            return max(now, self.window_end - length * left / self.previous)
        if left >= 0:
            return now
        # Next window: this window's use becomes the carry, `used * (end + length - t) / length`.
        fits = self.limit - need
        if self.used <= 0 or fits < 0:
            return float(self.window_end + length)
        return self.window_end + length - length * fits / self.used

    def reset_at(self, now: float) -> float:
        """When nothing counted so far counts any more: OpenAI's ``x-ratelimit-reset-*``."""
        if not self.sliding:
            return float(self.window_end)
        if self.used > 0 or self.balance < 0:
            return float(self.window_end + (self.window_end - self.window_start))
        return float(self.window_end) if self.carry(now) > 0 else now

    def reserve(self) -> int:
        """What one request is expected to take: it is admitted while the balance has at least 1 and
        takes up to this much of it. The last requests of a window thus get what is left, and only
        tokens beyond the estimate can pass the limit (not every request in flight)."""
        return 1 if self.kind == "rpm" else max(1, int(self.estimate + 0.5))

    def take(self) -> int:
        """Under the lock, at admit: requests count whole; tokens take what the balance holds of the
        estimate (a fail_open admit beyond its lease takes nothing now and settles at finish)."""
        taken = 1 if self.kind == "rpm" else min(self.reserve(), max(0, self.balance))
        self.balance -= taken
        return taken

    def key(self) -> CounterKey:
        return CounterKey(self.scope, self.kind, self.window_start, self.window_end)

    def remaining(self, now: float) -> int:
        return max(0, self.limit - self.carry(now) - self.used + self.balance)


@dataclass(eq=False, slots=True)
class Slots:
    """Concurrent requests of one scope: this process may run ``held`` of them (its row says
    ``db_held``, never fewer)."""

    scope: str
    limit: int
    block: int
    held: int = 0
    db_held: int = 0
    inflight: int = 0
    peak: int = 0  # most in flight since the flusher last looked: slots used that recently are kept
    fetch: Future[None] | None = None
    waiting: int = 0
    # Held while this process's row is written: an acquisition and a release never cross.
    op_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class Plan:
    """The counters one principal's requests go through: its key's and its project's."""

    leased: tuple[Leased, ...]
    slots: tuple[Slots, ...]


class Tightest(NamedTuple):
    limit: int
    remaining: int
    reset_s: float


def tightest(counters: Sequence[Leased], now: float, requests: bool) -> Tightest | None:
    best: Tightest | None = None
    for counter in counters:
        if (counter.kind == "rpm") == requests:
            entry = Tightest(counter.limit, counter.remaining(now), counter.reset_at(now) - now)
            if best is None or entry.remaining < best.remaining:
                best = entry
    return best


def rate_headers(plan: Plan, now: float) -> dict[str, str]:
    headers: dict[str, str] = {}
    for suffix, entry in (
        ("requests", tightest(plan.leased, now, True)),
        ("tokens", tightest(plan.leased, now, False)),
    ):
        if entry is not None:
            headers[f"x-ratelimit-limit-{suffix}"] = str(entry.limit)
            headers[f"x-ratelimit-remaining-{suffix}"] = str(entry.remaining)
            headers[f"x-ratelimit-reset-{suffix}"] = format_reset(entry.reset_s)
    return headers


Reservation = tuple[Leased, int, int]  # counter, its window then, what the admit took


class LimitPermit:
    """``core.tenancy.Permit``: its headers are computed when first read (after the admit, once)."""

    __slots__ = ("_done", "_finish", "_headers", "_now", "plan", "reservations")

    def __init__(
        self,
        finish: Callable[[LimitPermit, int], None],
        plan: Plan,
        reservations: tuple[Reservation, ...],
        now: float,
    ) -> None:
        self._finish = finish
        self.plan = plan
        self.reservations = reservations
        self._now = now
        self._headers: Mapping[str, str] | None = None
        self._done = False

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = rate_headers(self.plan, self._now)
        return self._headers

    def finish(self, prompt_tokens: int, completion_tokens: int) -> None:
        if not self._done:  # exactly once, even if a caller's error path calls it twice
            self._done = True
            self._finish(self, max(0, prompt_tokens) + max(0, completion_tokens))


class _Unlimited:
    """The permit of a principal without limits: nothing to count, nothing to send."""

    __slots__ = ()
    headers: Mapping[str, str] = MappingProxyType({})

    def finish(self, prompt_tokens: int, completion_tokens: int) -> None:
        return None


UNLIMITED = _Unlimited()

_WHAT = {"rpm": "requests per minute (RPM)", "tpm": "tokens per minute (TPM)"}


def denial(plan: Plan, leased: Sequence[Leased], slots: Sequence[Slots], now: float) -> RateLimitError:
    """The 429 for the counters that refused: a spent budget first (``insufficient_quota``), else the
    limit that resets last."""
    headers = rate_headers(plan, now)
    budgets = [c for c in leased if c.kind in ("day", "month")]
    if budgets:
        counter = max(budgets, key=lambda c: c.window_end)
        wait = counter.window_end - now
        headers["retry-after"] = retry_after(wait)
        return RateLimitError(
            f"You exceeded the token budget of {_who(counter.scope)} ({counter.limit} tokens per "
            f"{counter.kind}). It renews in {format_reset(wait)}.",
            code="insufficient_quota",
            headers=headers,
        )
    if leased:
        waits = [max(c.retry_at, c.room_at(now, c.reserve())) - now for c in leased]
        counter, wait = max(zip(leased, waits, strict=True), key=lambda pair: pair[1])
        wait = max(0.0, wait)
        headers["retry-after"] = retry_after(wait)
        return RateLimitError(
            f"Rate limit reached for {_WHAT[counter.kind]} on {_who(counter.scope)}: limit {counter.limit}, "
            f"used {counter.limit - counter.remaining(now)}. Please try again in {format_reset(wait)}.",
            code="rate_limit_exceeded",
            headers=headers,
        )
    headers["retry-after"] = "1"
    if slots:
        scope = slots[0]
        message = (
            f"Too many concurrent requests on {_who(scope.scope)}: limit {scope.limit}. "
            "Please try again when one has finished."
        )
    else:
        message = "The rate limiter is busy. Please try again in 1s."
    return RateLimitError(message, code="rate_limit_exceeded", headers=headers)


def _who(scope: str) -> str:
    return scope.replace(":", " ", 1)  # "key:key_abc" -> "key key_abc"
