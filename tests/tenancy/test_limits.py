"""The rate limiter on a real SQLite file and a real PostgreSQL server: rpm, tpm, budgets, concurrency,
key and project limits, the 429s and headers, windows rolling over, and two limiter instances (two
``Database`` objects, as two gateway processes would have) driving one limit at once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ErrorKind, RateLimitError
from core.tenancy import Limits, Permit, Principal, RateLimiter
from tenancy.database import Database, DatabaseError
from tenancy.limits import DatabaseRateLimiter, build_rate_limiter
from tenancy.projects import ProjectLimitStore
from tenancy.settings import LimitSettings

T0 = 1_750_000_020.0  # the start of a UTC minute (and 2025-06-15T15:07:00Z)


class Clock:
    """A wall clock the test moves: windows, resets and slot expiry follow it."""

    def __init__(self, now: float = T0 + 1) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fast(**fields: Any) -> LimitSettings:
    return LimitSettings(**({"flush_interval_s": 0.02, "retry_interval_s": 0.2} | fields))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tenancy.db'}"
    return str(request.getfixturevalue("postgres").new_database())


class Gateways:
    """Limiters as separate gateway processes would build them: each its own ``Database`` object."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[tuple[DatabaseRateLimiter, Database]] = []
        self.databases: list[Database] = []

    def database(self) -> Database:
        database = Database(self.url)
        self.databases.append(database)
        return database

    def limiter(
        self, clock: Callable[[], float] | None = None, cache_s: float = 60.0, **fields: Any
    ) -> DatabaseRateLimiter:
        database = self.database()
        projects = ProjectLimitStore(database, cache_s=cache_s)
        limiter = DatabaseRateLimiter(database, fast(**fields), projects, clock=clock or Clock())
        self.made.append((limiter, database))
        return limiter

    def close(self) -> None:
        for limiter, _ in self.made:
            limiter.close()
        for database in self.databases:
            database.close()


@pytest.fixture
def gateways(url: str) -> Iterator[Gateways]:
    made = Gateways(url)
    yield made
    made.close()


def key(key_id: str = "key_a", project: str = "climate", **limits: Any) -> Principal:
    return Principal(project=project, key_id=key_id, limits=Limits(**limits))


async def refused(limiter: RateLimiter, principal: Principal) -> RateLimitError:
    with pytest.raises(RateLimitError) as caught:
        await limiter.admit(principal)
    return caught.value


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def shared_used(database: Database, scope: str, kind: str) -> int:
    rows = database.execute("SELECT SUM(used) FROM rate_counters WHERE scope = ? AND kind = ?", (scope, kind))
    return int(rows[0][0] or 0)


async def test_rpm_refuses_with_openai_code_and_headers_and_slides(gateways: Gateways) -> None:
    clock = Clock(T0 + 18.5)
    limiter = gateways.limiter(clock)
    assert isinstance(limiter, RateLimiter)
    alice = key(rpm=3)
    remaining = []
    for _ in range(3):
        permit = await limiter.admit(alice)
        assert isinstance(permit, Permit)
        remaining.append(permit.headers["x-ratelimit-remaining-requests"])
        assert permit.headers["x-ratelimit-limit-requests"] == "3"
        # Nothing counts any more once this minute has slid past: its end plus a minute.
        assert permit.headers["x-ratelimit-reset-requests"] == "1m41.5s"
        assert "x-ratelimit-limit-tokens" not in permit.headers  # no token limit: no token headers
        permit.finish(10, 5)
    assert remaining == ["2", "1", "0"]
    error = await refused(limiter, alice)
    assert error.code == "rate_limit_exceeded"
    assert "requests per minute (RPM)" in error.message and "key_a" in error.message
    # Room for one is back when the 3 carried into the next minute weigh 2: 20 s into it.
    assert error.headers["retry-after"] == "62"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.headers["x-ratelimit-reset-requests"] == "1m41.5s"
    clock.now = T0 + 60  # the next minute: the previous one is still wholly inside the trailing minute
    await refused(limiter, alice)
    clock.now = T0 + 80  # a third of it has slid out: 3 * 40/60 = 2 still count
    permit = await limiter.admit(alice)
    assert permit.headers["x-ratelimit-remaining-requests"] == "0"
    await refused(limiter, alice)
    clock.now = T0 + 121  # two minutes on: the trailing minute holds only the one at T0 + 80
    permit = await limiter.admit(alice)
    assert permit.headers["x-ratelimit-remaining-requests"] == "1"


async def test_fixed_windows_roll_over_whole(gateways: Gateways) -> None:
    clock = Clock(T0 + 18.5)
    limiter = gateways.limiter(clock, window="fixed")
    alice = key(rpm=3)
    for _ in range(3):
        permit = await limiter.admit(alice)
        assert permit.headers["x-ratelimit-reset-requests"] == "41.5s"
    error = await refused(limiter, alice)
    assert error.headers["retry-after"] == "42" and error.headers["x-ratelimit-reset-requests"] == "41.5s"
    clock.now = T0 + 60  # the next minute starts from nothing
    permit = await limiter.admit(alice)
    assert permit.headers["x-ratelimit-remaining-requests"] == "2"
    assert permit.headers["x-ratelimit-reset-requests"] == "1m0s"


@pytest.mark.parametrize(("window", "across"), [("sliding", 0), ("fixed", 10)])
async def test_a_burst_across_a_minute_boundary(gateways: Gateways, window: str, across: int) -> None:
    """10 at the end of one minute, then as many as are let in just after it: none with a sliding
    window, a whole second limit with a fixed one; half a minute on, half the limit again (sliding)."""
    clock = Clock(T0 + 59)
    first, second = gateways.limiter(clock, window=window), gateways.limiter(clock, window=window)
    burst = key("key_burst", rpm=10)
    for _ in range(10):  # one process (two would each keep part of a lease unused)
        await first.admit(burst)
    await refused(first, burst)
    await refused(second, burst)
    clock.now = T0 + 61

    async def admitted() -> int:
        count = 0
        for limiter in (first, second) * 10:
            try:
                await limiter.admit(burst)
            except RateLimitError:
                continue
            count += 1
        return count

    assert await admitted() == across
    if window == "sliding":
        clock.now = T0 + 90  # 10 * 30/60 = 5 still count
        assert await admitted() == 5
        assert shared_used(gateways.database(), "key:key_burst", "rpm") == 15


async def test_an_ended_minute_keeps_what_was_used_not_what_was_leased(gateways: Gateways) -> None:
    """The unused part of a lease goes back to its minute's row, and tokens spent beyond it are charged
    there, once the next minute starts: the carry into it counts use, not leases."""
    clock = Clock(T0 + 30)
    limiter = gateways.limiter(clock, lease_fraction=0.1)
    database = gateways.database()
    erin = key("key_erin", rpm=1000, tpm=10_000)
    for _ in range(3):
        (await limiter.admit(erin)).finish(400, 100)  # the first reserves 1 token: 499 beyond its lease
    assert shared_used(database, "key:key_erin", "rpm") > 3  # leased ahead, 100 at a time
    clock.now = T0 + 60 + 30  # half of the ended minute still counts
    permit = await limiter.admit(erin)
    eventually(lambda: shared_used(database, "key:key_erin", "tpm") - permit_tokens(database) == 1500)
    eventually(lambda: used_in(database, "key:key_erin", "rpm", int(T0)) == 3)
    # The lease gave the ended minute back its 97 unused first, so the carry is 3 * 0.5, rounded up.
    assert permit.headers["x-ratelimit-remaining-requests"] == str(1000 - 2 - 1)
    permit.finish(1, 1)


async def test_a_debt_charged_while_the_minute_rolls_is_charged_once(gateways: Gateways) -> None:
    """The flusher charges a debt of the ending minute while a request starts the next one (the roll
    leaves the balance, that debt included, to be settled): the minute's row gets the debt once."""
    clock = Clock(T0 + 30)
    limiter = gateways.limiter(clock, lease_fraction=0.1)
    database = gateways.database()
    store = limiter._state.store
    real_charge, charging = store.charge, threading.Event()

    def slow_charge(charges: Any) -> None:  # the real charge, made slow so the roll lands inside it
        charging.set()
        time.sleep(0.3)
        real_charge(charges)

    store.charge = slow_charge  # type: ignore[method-assign]
    frank = key("key_frank", tpm=10_000)
    for _ in range(3):
        (await limiter.admit(frank)).finish(400, 100)  # the third leaves a debt of 499
    assert await asyncio.to_thread(charging.wait, 5.0)  # the flusher is inside its charge
    clock.now = T0 + 60 + 30
    (await limiter.admit(frank)).finish(1, 1)
    eventually(lambda: used_in(database, "key:key_frank", "tpm", int(T0)) == 1500)
    await asyncio.sleep(0.5)  # and it stays there (a second charge of the debt would make it 1,999)
    assert used_in(database, "key:key_frank", "tpm", int(T0)) == 1500


def used_in(database: Database, scope: str, kind: str, window_start: int) -> int:
    rows = database.execute(
        "SELECT used FROM rate_counters WHERE scope = ? AND kind = ? AND window_start = ?",
        (scope, kind, window_start),
    )
    return int(rows[0][0]) if rows else 0


def permit_tokens(database: Database) -> int:
    """What the current minute's row of key_erin holds (the last admit's lease)."""
    return used_in(database, "key:key_erin", "tpm", int(T0) + 60)


async def test_tpm_counts_prompt_and_completion_tokens(gateways: Gateways) -> None:
    clock = Clock()
    limiter = gateways.limiter(clock)
    bob = key("key_b", tpm=100)
    for _ in range(2):  # 2 x 60 = 120 tokens: the window is spent
        permit = await limiter.admit(bob)
        assert permit.headers["x-ratelimit-limit-tokens"] == "100"
        permit.finish(40, 20)
    error = await refused(limiter, bob)
    assert error.code == "rate_limit_exceeded" and "tokens per minute (TPM)" in error.message
    assert error.headers["x-ratelimit-remaining-tokens"] == "0"
    assert error.headers["x-ratelimit-reset-tokens"] == "1m59s"
    # The tokens beyond the lease reach the shared counter within a flush tick.
    database = gateways.database()
    eventually(lambda: shared_used(database, "key:key_b", "tpm") == 120)
    clock.now += 60  # the 120 still weigh 118 of 100 a second into the next minute
    await refused(limiter, bob)
    clock.now += 60
    (await limiter.admit(bob)).finish(1, 1)


async def test_a_spent_day_budget_is_insufficient_quota_until_the_next_day(gateways: Gateways) -> None:
    clock = Clock()
    limiter = gateways.limiter(clock)
    carol = key("key_c", token_budget=1000, budget_period="day")
    for _ in range(3):  # 1200 tokens
        (await limiter.admit(carol)).finish(300, 100)
    error = await refused(limiter, carol)
    assert error.code == "insufficient_quota" and "1000 tokens per day" in error.message
    day_end = (int(clock.now) // 86_400 + 1) * 86_400
    assert error.headers["retry-after"] == str(day_end - int(clock.now))
    assert error.headers["x-ratelimit-reset-tokens"].endswith("m59s")  # hours away, in Go notation
    clock.now += 3600  # a later hour of the same day: still spent
    await refused(limiter, carol)
    clock.now = day_end + 1
    (await limiter.admit(carol)).finish(1, 1)


async def test_a_project_limit_holds_across_its_keys_and_the_tightest_limit_shows(gateways: Gateways) -> None:
    limiter = gateways.limiter()
    ProjectLimitStore(gateways.database()).set("climate", Limits(rpm=4))
    alice, bob = key("key_a", rpm=100), key("key_b")
    admitted = []
    for principal in (alice, bob, alice, bob):
        admitted.append(await limiter.admit(principal))
    # The project's 4 is tighter than alice's 100: the headers show the project's.
    assert admitted[2].headers["x-ratelimit-limit-requests"] == "4"
    error = await refused(limiter, bob)
    assert "project climate" in error.message
    await refused(limiter, alice)
    # Another project's keys are not touched by it.
    (await limiter.admit(key("key_d", project="physics", rpm=5))).finish(0, 0)


async def test_concurrency_across_two_processes_and_a_crashed_one(gateways: Gateways) -> None:
    clock = Clock()
    first = gateways.limiter(clock, concurrency_ttl_s=5.0)
    second = gateways.limiter(clock, concurrency_ttl_s=5.0)
    dave = key("key_e", max_concurrency=2)
    held = [await first.admit(dave), await first.admit(dave)]
    error = await refused(second, dave)
    assert "concurrent requests" in error.message and error.headers["retry-after"] == "1"
    await refused(first, dave)
    held.pop().finish(1, 1)  # first gives the slot back within a flush tick or two
    deadline = time.monotonic() + 10
    while True:
        try:
            permit = await second.admit(dave)
            break
        except RateLimitError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    await refused(first, dave)
    permit.finish(0, 0)
    # `first` dies holding a slot (no close, no heartbeat): it counts until its row expires.
    first._state.closed = True  # stops its flusher as a crash would
    with first._state.lock:
        first._state.wake.notify_all()
    eventually(lambda: second._state.slots["key:key_e"].db_held == 0)
    assert len([await second.admit(dave)]) == 1
    await refused(second, dave)
    clock.now += 6  # past first's expiry
    await second.admit(dave)


def drive(limiter: DatabaseRateLimiter, principal: Principal, attempts: int, tokens: int) -> list[int]:
    """One gateway process's load: ``attempts`` requests, 16 at a time, on its own event loop."""
    admitted: list[int] = []

    async def one(semaphore: asyncio.Semaphore) -> None:
        async with semaphore:
            try:
                permit = await limiter.admit(principal)
            except RateLimitError:
                return
            await asyncio.sleep(0.001)  # the request runs
            permit.finish(tokens // 2, tokens - tokens // 2)
            admitted.append(tokens)

    async def run() -> None:
        semaphore = asyncio.Semaphore(16)
        await asyncio.gather(*(one(semaphore) for _ in range(attempts)))

    asyncio.run(run())
    return admitted


def two_processes(gateways: Gateways, principal: Principal, attempts: int, tokens: int = 0) -> list[int]:
    limiters = [gateways.limiter(), gateways.limiter()]
    results: list[list[int]] = [[], []]

    def process(index: int) -> None:
        results[index] = drive(limiters[index], principal, attempts, tokens)

    threads = [threading.Thread(target=process, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(result for result in results), "both processes admitted requests"
    return results[0] + results[1]


def test_two_processes_share_one_rpm_limit(gateways: Gateways) -> None:
    limit = 2000
    admitted = two_processes(gateways, key("key_f", rpm=limit), attempts=1500)
    # Leases never overshoot the shared counter; unused leases (1% each) are all that is lost.
    assert limit * 0.95 <= len(admitted) <= limit * 1.02


def test_two_processes_share_one_token_limit(gateways: Gateways) -> None:
    limit = 40_000
    spent = two_processes(gateways, key("key_g", tpm=limit), attempts=300, tokens=100)
    assert limit * 0.95 <= sum(spent) <= limit * 1.02


async def test_tokens_spent_beyond_a_lease_reach_the_shared_counter_promptly(gateways: Gateways) -> None:
    limiter = gateways.limiter()
    erin = key("key_h", token_budget=100_000, budget_period="month")
    (await limiter.admit(erin)).finish(2000, 500)  # far beyond the first 1% lease
    database = gateways.made[0][1]
    eventually(lambda: shared_used(database, "key:key_h", "month") >= 2500, timeout_s=2.0)


async def test_without_limits_there_is_no_database_work(gateways: Gateways) -> None:
    limiter = gateways.limiter()
    database = gateways.made[0][1]
    calls = 0
    real = database.transaction

    def counting() -> Any:
        nonlocal calls
        calls += 1
        return real()

    database.transaction = counting  # type: ignore[method-assign]
    free = key("key_i")
    await limiter.admit(free)  # reads the project's limits (none) once
    before = calls
    for _ in range(500):
        permit = await limiter.admit(free)
        assert dict(permit.headers) == {}
        permit.finish(10, 10)
    assert calls == before and calls <= 1
    assert limiter._flusher is None  # nothing to flush either


async def test_project_limits_are_seen_within_the_cache_time(gateways: Gateways) -> None:
    limiter = gateways.limiter(cache_s=0.05)
    other = ProjectLimitStore(gateways.database())
    principal = key("key_j", project="bio")
    assert dict((await limiter.admit(principal)).headers) == {}
    other.set("bio", Limits(rpm=1))
    await asyncio.sleep(0.06)
    await limiter.admit(principal)  # served from the stale entry while it is read again
    deadline = time.monotonic() + 5
    while True:
        try:
            permit = await limiter.admit(principal)
        except RateLimitError:
            break
        assert time.monotonic() < deadline
        permit.finish(0, 0)
        await asyncio.sleep(0.01)


async def test_close_gives_unused_leases_back(gateways: Gateways) -> None:
    first = gateways.limiter()
    frank = key("key_k", token_budget=10_000, budget_period="day")
    (await first.admit(frank)).finish(30, 20)
    database = gateways.made[0][1]
    assert shared_used(database, "key:key_k", "day") >= 100  # a lease of 1% at least
    first.close()
    assert shared_used(database, "key:key_k", "day") == 50


async def test_database_failure_fail_closed_is_a_503_and_fail_open_serves(
    gateways: Gateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = gateways.limiter(on_database_error="fail_closed")
    opened = gateways.limiter(on_database_error="fail_open")

    def broken(*args: Any) -> Any:
        raise DatabaseError("the tenancy database failed: OperationalError: gone")

    for limiter in (closed, opened):
        monkeypatch.setattr(limiter._state.store, "lease", broken)
    grace = key("key_l", rpm=10)
    with pytest.raises(DatabaseError) as caught:
        await closed.admit(grace)
    assert caught.value.kind == ErrorKind.UNAVAILABLE
    with pytest.raises(DatabaseError):  # within retry_interval_s: refused without a query
        await closed.admit(grace)
    for _ in range(3):
        (await opened.admit(grace)).finish(1, 1)
    monkeypatch.undo()  # the database is back: what fail_open served is charged
    database = gateways.made[1][1]
    eventually(lambda: shared_used(database, "key:key_l", "rpm") >= 3)
    await asyncio.sleep(0.25)  # past retry_interval_s
    (await closed.admit(grace)).finish(0, 0)


async def test_a_hanging_database_answers_within_the_timeout(
    gateways: Gateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = gateways.limiter(database_timeout_s=0.2)
    release = threading.Event()
    real = limiter._state.store.lease

    def hanging(*args: Any) -> Any:
        release.wait(10)
        return real(*args)

    monkeypatch.setattr(limiter._state.store, "lease", hanging)
    started = time.monotonic()
    with pytest.raises(DatabaseError):
        await limiter.admit(key("key_m", rpm=10))
    assert time.monotonic() - started < 2.0
    release.set()


async def test_built_from_settings_and_off_when_disabled(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    assert build_rate_limiter(database, LimitSettings(enabled=False)) is None
    limiter = build_rate_limiter(database, LimitSettings())
    assert isinstance(limiter, RateLimiter)
    assert isinstance(limiter, DatabaseRateLimiter)
    (await limiter.admit(key(rpm=1))).finish(0, 0)
    await limiter.aclose()
    await limiter.aclose()  # idempotent
    database.close()
