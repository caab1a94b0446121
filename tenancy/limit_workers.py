"""What runs off the event loop for the limiter: lease fetches and slot acquisitions (worker threads),
how admits wait for them, and the settling of a finished request's tokens (cheap, under the lock,
from wherever ``finish`` is called)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from tenancy.database import DatabaseError
from tenancy.limit_counters import ESTIMATE_WEIGHT, Leased, LimitPermit, Slots
from tenancy.limit_flusher import LimiterState

RETRY_FLOOR_S = 0.05  # a full sliding counter is asked again at most this often per process


def lease(state: LimiterState, counter: Leased) -> None:
    """Takes a lease for ``counter``'s window; every admit waiting on this fetch shares it."""
    try:
        with state.ledger_lock:  # not beside a debt charge: the debt would be covered twice
            with state.lock:
                key, limit = counter.key(), counter.limit
                # Enough for every waiting admit (and any debt), and a block beyond.
                shortfall = counter.reserve() * max(1, counter.waiting) - counter.balance
                amount = min(limit, max(0, shortfall) + counter.block)
                weight = counter.carry_weight(state.clock())
                ended, counter.unsettled = counter.unsettled, []
            if ended:  # first: the carry this lease reads must count what the last minute used
                try:
                    state.store.charge(ended)
                except DatabaseError:
                    with state.lock:
                        counter.unsettled[:0] = ended
                    raise
            granted, used, previous = state.store.lease(key, amount, limit, weight)
            with state.lock:
                if counter.window_start != key.window_start:  # the window ended meanwhile: give it back
                    if granted:
                        counter.unsettled.append((key, -granted))
                        state.mark_dirty()
                else:
                    counter.balance += granted
                    counter.used, counter.previous = used, previous
                    # Less than asked: the shared counter is full; refusals are local (no query) until
                    # room for a request should be back, and at most every RETRY_FLOOR_S.
                    counter.exhausted = granted < amount
                    if counter.exhausted:
                        now = state.clock()
                        counter.retry_at = max(now + RETRY_FLOOR_S, counter.room_at(now, counter.reserve()))
    except DatabaseError as exc:
        with state.lock:
            state.failed(exc)
        raise
    finally:
        with state.lock:
            counter.fetch = None


def acquire(state: LimiterState, slots: Slots) -> None:
    """Raises this process's slots of a scope, as far as the other processes' live rows allow."""
    try:
        with slots.op_lock:
            with state.lock:
                want = min(slots.limit, slots.inflight + max(1, slots.waiting) + slots.block - 1)
                want = max(want, min(slots.held, slots.limit))  # never lowers what it holds
            held, _ = state.store.hold_slots(
                slots.scope, state.process, want, slots.limit, state.clock(), state.settings.concurrency_ttl_s
            )
            with state.lock:
                slots.held = slots.db_held = held
                slots.peak = max(slots.peak, held)  # kept a tick at least: the waiting admits take them
                state.mark_dirty()  # the flusher gives back what goes unused, and heartbeats
    except DatabaseError as exc:
        with state.lock:
            state.failed(exc)
        raise
    finally:
        with state.lock:
            slots.fetch = None


def settle(state: LimiterState, permit: LimitPermit, tokens: int) -> None:
    """A request has ended: its tokens replace what it reserved, its slots are free."""
    with state.lock:
        for counter, window_start, taken in permit.reservations:
            if counter.kind == "rpm":
                continue
            # The first request sets the estimate outright: ramping up from 0 would under-reserve.
            counter.estimate += (tokens - counter.estimate) * (ESTIMATE_WEIGHT if counter.sampled else 1.0)
            counter.sampled = True
            # A request that outlived its window counts in the window it ended in.
            counter.balance += (taken if counter.window_start == window_start else 0) - tokens
            if counter.balance < 0:
                state.mark_dirty()
                if -counter.balance >= counter.flush_at:
                    state.urgent = True
        for slots in permit.plan.slots:
            slots.inflight = max(0, slots.inflight - 1)
            state.mark_dirty()
        if state.urgent:
            state.wake.notify()


async def wait_for(state: LimiterState, fetches: Sequence[Future[Any]]) -> None:
    """Waits for worker fetches at most ``database_timeout_s``; a failure or a timeout marks the
    database down (the admit's next look decides per ``on_database_error``). Shielded: an admit that
    stops waiting (timeout, client gone) does not cancel a fetch other admits share."""
    waits = [asyncio.shield(_wrap(fetch)) for fetch in dict.fromkeys(fetches)]
    timeout = state.settings.database_timeout_s
    try:
        results = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout)
    except TimeoutError:
        with state.lock:
            state.failed(TimeoutError(f"no answer within {timeout}s"))
        return
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, DatabaseError):
            raise result


def _wrap(fetch: Future[Any]) -> asyncio.Future[Any]:
    waited = asyncio.wrap_future(fetch)
    # Retrieved here, so that an admit that stopped waiting leaves no error unread.
    waited.add_done_callback(lambda done: done.cancelled() or done.exception())
    return waited
