"""Requests, tokens, concurrency and budgets per key and per project, held across gateway processes.

``DatabaseRateLimiter`` implements ``core.tenancy.RateLimiter`` over the shared counters of
``tenancy/limit_store.py`` without a database round trip per request:

* **Leases.** For each limit (rpm and tpm per UTC minute, token budgets per UTC day or month) a process
  leases a small block of the window's allowance (``lease_fraction`` of the limit) from the shared
  counter with one conditional upsert that never passes the limit, and admits from it locally. When it
  runs out, one lease fetch in a worker thread serves every admit waiting for it. Processes together
  therefore never admit more than the limit (requests exactly; tokens up to what admitted requests use
  beyond their reservation), and under-use it by at most one unused lease per process at a window's
  end. A counter that is full is refused locally until room for a request should be back (its window's
  end, or sooner as a sliding window's carry fades): refusals cost no query.
* **Sliding windows** (rpm and tpm, ``window: sliding``, the default) count the trailing minute as the
  previous UTC minute's counter weighted by the share of it still inside, plus this minute's: a lease
  fits under the limit less that carry. The estimate assumes the previous minute's use was spread
  evenly, so a client cannot send twice a limit across a boundary, as it can with ``fixed`` windows.
* **Tokens** are not known at admit: a request is admitted while any of the window's tokens are left
  and reserves up to the scope's mean tokens per request; ``finish`` settles the actual count locally.
  What a process spends beyond its lease is charged to the shared counter by the flusher within
  ``flush_interval_s`` (at once past ``flush_fraction`` of the limit). The shared counter holds every
  process's leases, so nobody decides on stale spend; the limit is passed only by what requests use
  beyond their reservation (a scope's first requests in a process reserve 1: no mean is known yet).
* **Concurrency** is counted across processes as well: each process holds slots in its own row of
  ``rate_slots``, renewed by heartbeat, so a crashed process's slots come back after
  ``concurrency_ttl_s``. Slots unused for a flush tick go back to the other processes.
* A key's limits and its project's (``ProjectLimitStore``) both apply; the headers show the tightest,
  a spent budget answers ``insufficient_quota``, any other refusal ``rate_limit_exceeded``.
  A principal without limits anywhere gets an empty permit with no database work (project limits are
  cached for ``project_cache_s``).
* The database failing or hanging (``database_timeout_s``): with ``on_database_error: fail_closed`` an
  admit that needs it raises ``DatabaseError`` (503), with ``fail_open`` it is admitted and charged
  later. Admits still within a lease are unaffected either way.

"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from core.tenancy import Limits, Permit, Principal
from tenancy.database import Database, DatabaseError
from tenancy.limit_counters import UNLIMITED, Kind, Leased, LimitPermit, Plan, Slots, denial, share
from tenancy.limit_flusher import Flusher, LimiterState, give_back
from tenancy.limit_store import CounterStore
from tenancy.limit_windows import Period
from tenancy.limit_workers import acquire, lease, settle, wait_for
from tenancy.projects import ProjectLimitStore
from tenancy.settings import LimitSettings

MAX_ROUNDS = 4  # lease fetches one admit may wait for before it is refused as contended
MAX_PLANS = 10_000  # cached per-key plans; past it the cache starts over
CLOSE_WAIT_S = 5.0
T = TypeVar("T")


def _unlimited(limits: Limits) -> bool:
    return (
        limits.rpm is None
        and limits.tpm is None
        and limits.max_concurrency is None
        and limits.token_budget is None
    )


class DatabaseRateLimiter:
    def __init__(
        self,
        database: Database,
        settings: LimitSettings,
        project_limits: ProjectLimitStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._projects = project_limits
        self._state = LimiterState(CounterStore(database), settings, clock, uuid.uuid4().hex)
        # Its own workers: a busy default executor must not delay the lease every admit waits for.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rate-limits")
        self._running: set[Future[Any]] = set()  # close() waits for them: they use the database
        self._project_fetches: dict[str, Future[Limits]] = {}
        self._flusher: Flusher | None = None  # started by the first limited request
        self._closed = False

    async def admit(self, principal: Principal) -> Permit:
        if not self._settings.enabled:
            return UNLIMITED
        project, fresh = self._projects.cached(principal.project)
        if project is None or not fresh:
            project = await self._project_limits(principal.project)
        key = principal.limits
        if _unlimited(key) and _unlimited(project):
            return UNLIMITED
        return await self._admit(self._plan(principal.key_id, principal.project, key, project))

    # --- project limits: cached; a stale entry is used while it is read again in the background ---

    async def _project_limits(self, project: str) -> Limits:
        limits, fresh = self._projects.cached(project)
        if limits is not None:
            if not fresh and not self._state.database_down():
                self._fetch_project(project)
            return limits
        if not self._state.database_down():
            await wait_for(self._state, [self._fetch_project(project)])
            limits, _ = self._projects.cached(project)
            if limits is not None:
                return limits
        if self._settings.on_database_error == "fail_closed":
            raise _unavailable()
        self._projects.remember(project, Limits(), self._settings.retry_interval_s)
        return Limits()

    def _fetch_project(self, project: str) -> Future[Limits]:
        fetch = self._project_fetches.get(project)
        if fetch is None or fetch.done():  # done: it finished before it was stored here
            fetch = self._project_fetches[project] = self._submit(self._read_project, project)
        return fetch

    def _read_project(self, project: str) -> Limits:
        try:
            return self._projects.get(project)
        except DatabaseError as exc:
            with self._state.lock:
                self._state.failed(exc)
            raise
        finally:
            self._project_fetches.pop(project, None)

    # --- admission ---

    def _plan(self, key_id: str, project: str, key: Limits, project_limits: Limits) -> Plan:
        state = self._state
        cached = state.plans.get(key_id)
        if (
            cached is not None
            and (cached[0] is key or cached[0] == key)
            and (cached[1] is project_limits or cached[1] == project_limits)
            and cached[2] == project
        ):
            return cached[3]
        leased: list[Leased] = []
        slots: list[Slots] = []
        with state.lock:
            for scope, limits in ((f"key:{key_id}", key), (f"project:{project}", project_limits)):
                if limits.rpm is not None:
                    leased.append(self._counter(scope, "rpm", "minute", limits.rpm))
                if limits.tpm is not None:
                    leased.append(self._counter(scope, "tpm", "minute", limits.tpm))
                if limits.token_budget is not None:
                    period = limits.budget_period
                    leased.append(self._counter(scope, period, period, limits.token_budget))
                if limits.max_concurrency is not None:
                    slots.append(self._slots(scope, limits.max_concurrency))
            plan = Plan(tuple(leased), tuple(slots))
            if len(state.plans) >= MAX_PLANS:
                state.plans.clear()
            state.plans[key_id] = (key, project_limits, project, plan)
        return plan

    def _counter(self, scope: str, kind: Kind, period: Period, limit: int) -> Leased:
        counters = self._state.leased
        counter = counters.get((scope, kind))
        settings = self._settings
        if counter is None:
            counter = counters[(scope, kind)] = Leased(
                scope,
                kind,
                period,
                limit,
                share(limit, settings.lease_fraction),
                share(limit, settings.flush_fraction),
                sliding=settings.window == "sliding" and period == "minute",
            )
        elif counter.limit != limit:
            counter.limit, counter.exhausted = limit, False  # a raised limit may have room again
            counter.block = share(limit, settings.lease_fraction)
            counter.flush_at = share(limit, settings.flush_fraction)
        return counter

    def _slots(self, scope: str, limit: int) -> Slots:
        slots = self._state.slots.get(scope)
        if slots is None:
            slots = self._state.slots[scope] = Slots(
                scope, limit, share(limit, self._settings.lease_fraction)
            )
        elif slots.limit != limit:
            slots.limit, slots.block = limit, share(limit, self._settings.lease_fraction)
        return slots

    async def _admit(self, plan: Plan) -> Permit:
        state = self._state
        tried: set[int] = set()  # slots whose acquisition this admit waited for
        for _ in range(MAX_ROUNDS):
            now = state.clock()
            with state.lock:
                outcome = self._try(plan, now, tried)
            if isinstance(outcome, LimitPermit):
                return outcome
            if isinstance(outcome, Exception):
                raise outcome
            try:
                await wait_for(state, [fetch for _, fetch in outcome])
            finally:
                with state.lock:
                    for counter, _ in outcome:
                        counter.waiting -= 1
        with state.lock:
            raise denial(plan, (), (), state.clock())

    def _try(
        self, plan: Plan, now: float, tried: set[int]
    ) -> LimitPermit | Exception | list[tuple[Leased | Slots, Future[None]]]:
        """Under the lock: a permit, a refusal, or the lease fetches to wait for first."""
        state = self._state
        down = state.database_down()
        refused: list[Leased] = []
        full: list[Slots] = []
        waits: list[tuple[Leased | Slots, Future[None]]] = []
        for counter in plan.leased:
            counter.roll(now)
            if counter.unsettled:
                state.mark_dirty()
            if counter.balance >= 1:
                continue
            if counter.exhausted:
                refused.append(counter)
            elif not down:
                if counter.fetch is None:
                    counter.fetch = self._submit(lease, state, counter)
                counter.waiting += 1
                waits.append((counter, counter.fetch))
        for slots in plan.slots:
            if slots.inflight < slots.held or down:
                continue
            if id(slots) in tried:  # its acquisition came back and found no slot free
                full.append(slots)
            else:
                if slots.fetch is None:
                    slots.fetch = self._submit(acquire, state, slots)
                slots.waiting += 1
                tried.add(id(slots))
                waits.append((slots, slots.fetch))
        if refused or full:
            for waiter, _ in waits:
                waiter.waiting -= 1
            return denial(plan, refused, full, now)
        if waits:
            return waits
        if down and self._settings.on_database_error == "fail_closed" and self._needs_database(plan):
            return _unavailable()
        # Admitted (fail_open: possibly beyond a lease; the debt is charged once the database works).
        reservations = []
        for counter in plan.leased:
            reservations.append((counter, counter.window_start, counter.take()))
            if counter.balance < 0:  # fail_open beyond the lease: charged when the database is back
                state.mark_dirty()
        for slots in plan.slots:
            slots.inflight += 1
            slots.peak = max(slots.peak, slots.inflight)
        if self._flusher is None:
            self._flusher = Flusher(state)
        return LimitPermit(self._finish, plan, tuple(reservations), now)

    @staticmethod
    def _needs_database(plan: Plan) -> bool:
        return any(c.balance < 1 for c in plan.leased) or any(s.inflight >= s.held for s in plan.slots)

    def _submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        future = self._executor.submit(function, *args)
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future

    def _finish(self, permit: LimitPermit, tokens: int) -> None:
        settle(self._state, permit, tokens)

    # --- close ---

    def close(self) -> None:
        """Stops the flusher; gives back unused leases and this process's slots, charges its debts."""
        state = self._state
        if self._closed:
            return
        self._closed = True
        with state.lock:
            state.closed = True
            state.wake.notify_all()
        if self._flusher is not None:  # first: a charge it has under way is not made twice
            self._flusher.join(timeout=CLOSE_WAIT_S)
        self._executor.shutdown(wait=False, cancel_futures=True)
        # A worker still inside a query must be done before the caller closes the database (closing
        # a connection another thread is using crashes the driver); bounded, for a hung database.
        wait(self._running.copy(), timeout=CLOSE_WAIT_S)  # copy(): atomic, unlike iterating
        with state.lock:
            returns = give_back(state)
        try:
            state.store.charge(returns)
            state.store.forget_process(state.process)
        except DatabaseError:  # what it leased lapses with its window; its slots expire
            pass

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


def _unavailable() -> DatabaseError:
    return DatabaseError("The rate limits cannot be checked now: the tenancy database is unavailable.")


def build_rate_limiter(database: Database, settings: LimitSettings) -> DatabaseRateLimiter | None:
    """The limiter of ``tenancy.limits`` settings over the tenancy database; None when disabled."""
    if not settings.enabled:
        return None
    return DatabaseRateLimiter(
        database, settings, ProjectLimitStore(database, cache_s=settings.project_cache_s)
    )
