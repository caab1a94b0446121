"""The limiter's background thread: what a process owes the shared counters, off the request path.

Each tick (``flush_interval_s`` while there is work, at once when a debt passes ``flush_fraction`` of
its limit) it charges token debts, gives idle concurrency slots back, and, less often, renews this
process's slot rows (heartbeat) and deletes rows of long-ended windows. A database failure keeps the
work for a later tick; it never reaches a request.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tenancy.database import DatabaseError
from tenancy.limit_counters import Leased, Plan, Slots
from tenancy.limit_store import CounterKey, CounterStore
from tenancy.settings import LimitSettings

logger = logging.getLogger(__name__)

CLEANUP_EVERY_S = 600.0


@dataclass(eq=False)
class LimiterState:
    """What the limiter's admits, its workers and its flusher share; every field under ``lock``."""

    store: CounterStore
    settings: LimitSettings
    clock: Callable[[], float]  # wall clock: windows and slot expiry are compared across processes
    process: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held across a lease fetch or a debt charge, database round trip included: a lease computed while a
    # charge is in flight would cover the same debt again (charged twice, credited twice locally).
    ledger_lock: threading.Lock = field(default_factory=threading.Lock)
    leased: dict[tuple[str, str], Leased] = field(default_factory=dict)
    slots: dict[str, Slots] = field(default_factory=dict)
    plans: dict[str, tuple[object, object, str, Plan]] = field(default_factory=dict)
    down_until: float = 0.0  # monotonic: the database failed; it is left alone until then
    dirty: bool = False  # a tick has work (a debt, a slot to give back)
    urgent: bool = False  # ... that should not wait for the interval
    closed: bool = False

    def __post_init__(self) -> None:
        self.wake = threading.Condition(self.lock)

    def failed(self, exc: BaseException) -> None:
        if time.monotonic() >= self.down_until:  # one line per outage, not one per request
            logger.warning("rate limits: the tenancy database failed (%s)", exc)
        self.down_until = time.monotonic() + self.settings.retry_interval_s

    def database_down(self) -> bool:
        return time.monotonic() < self.down_until

    def mark_dirty(self) -> None:
        """Under the lock: the flusher, perhaps waiting a heartbeat interval, looks within a tick."""
        if not self.dirty:
            self.dirty = True
            self.wake.notify()


class Flusher:
    def __init__(self, state: LimiterState) -> None:
        self._state = state
        settings = state.settings
        self._heartbeat_every = settings.concurrency_ttl_s / 3
        self._next_heartbeat = time.monotonic() + self._heartbeat_every
        # Jittered, so that gateways started together do not clean up together.
        self._next_cleanup = time.monotonic() + CLEANUP_EVERY_S * random.uniform(0.1, 1.0)
        self._thread = threading.Thread(target=self._run, name="rate-limits", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        state = self._state
        while True:
            with state.lock:
                if not state.closed and not state.urgent:
                    wait = state.settings.flush_interval_s if state.dirty else self._heartbeat_every
                    state.wake.wait(wait)
                if state.closed:
                    return
                state.dirty = state.urgent = False
            try:
                self.tick()
            except Exception:  # a bug must not end the thread that gives slots back
                logger.exception("rate limits: flusher tick failed")
                with state.lock:
                    state.dirty = True

    def tick(self) -> None:
        state = self._state
        if state.database_down():
            with state.lock:
                state.dirty = True
            return
        self._charge_debts()
        self._release_slots()
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._heartbeat_every
            self._heartbeat()
        if now >= self._next_cleanup:
            self._next_cleanup = now + CLEANUP_EVERY_S
            self._cleanup()

    def _charge_debts(self) -> None:
        """A debt stays on the balance until the charge commits: a lease taken meanwhile covers it as
        well (its shortfall counts the debt), which over-reserves for a moment but never lets another
        process lease room that was already spent."""
        state = self._state
        with state.ledger_lock:
            with state.lock:
                debts = [(c, c.key(), -c.balance) for c in state.leased.values() if c.balance < 0]
                ended = [(c, c.unsettled) for c in state.leased.values() if c.unsettled]
                for counter, _ in ended:
                    counter.unsettled = []
            if not debts and not ended:
                return
            try:
                state.store.charge(
                    [(key, debt) for _, key, debt in debts] + [item for _, items in ended for item in items]
                )
            except DatabaseError as exc:
                with state.lock:
                    state.failed(exc)
                    state.dirty = True
                    for counter, items in ended:  # kept for the next tick
                        counter.unsettled[:0] = items
                return
            with state.lock:
                # Charged: the counter holds the debt now. Finishes in between add to the balance alone,
                # and no lease ran meanwhile (ledger_lock), so crediting the debt back is exact.
                for counter, key, debt in debts:
                    if counter.window_start == key.window_start:
                        counter.balance += debt
                        counter.used += debt
                    else:  # the window rolled meanwhile and left its balance, debt included, unsettled
                        settled_already(counter, key, debt)

    def _release_slots(self) -> None:
        """Slots unused for a whole tick go back; those used within it stay (no churn under load)."""
        state = self._state
        taken: list[Slots] = []
        releases: list[tuple[Slots, int]] = []
        try:
            with state.lock:
                # Not while admits wait for slots: what was acquired for them is theirs.
                candidates = [s for s in state.slots.values() if s.db_held > s.inflight and not s.waiting]
            for slots in candidates:
                if not slots.op_lock.acquire(blocking=False):  # being acquired: next tick
                    continue
                taken.append(slots)
                with state.lock:
                    target = max(slots.inflight, slots.peak)
                    slots.peak = slots.inflight
                    if slots.db_held > target and not slots.waiting:
                        slots.held = min(slots.held, target)
                        releases.append((slots, target))
                    if slots.db_held > slots.inflight:
                        state.dirty = True  # look again next tick
            if not releases:
                return
            try:
                state.store.release_slots([(s.scope, target) for s, target in releases], state.process)
            except DatabaseError as exc:
                with state.lock:
                    state.failed(exc)
                    state.dirty = True
                return
            with state.lock:
                for slots, target in releases:
                    slots.db_held = target
        finally:
            for slots in taken:
                slots.op_lock.release()

    def _heartbeat(self) -> None:
        state = self._state
        with state.lock:
            holding = any(s.db_held for s in state.slots.values())
        if holding:
            try:
                state.store.heartbeat(state.process, state.clock() + state.settings.concurrency_ttl_s)
            except DatabaseError as exc:
                with state.lock:
                    state.failed(exc)
                self._next_heartbeat = time.monotonic() + state.settings.retry_interval_s

    def _cleanup(self) -> None:
        state = self._state
        now = state.clock()
        with state.lock:
            # Counters of ended windows and idle slots are dropped with the plans that name them, so
            # that no plan keeps a counter the next request would no longer find.
            ended = [
                k
                for k, c in state.leased.items()
                if c.window_end <= now and c.fetch is None and not c.unsettled
            ]
            idle = [k for k, s in state.slots.items() if not (s.inflight or s.db_held or s.fetch)]
            for key in ended:
                del state.leased[key]
            for scope in idle:
                del state.slots[scope]
            if ended or idle:
                state.plans.clear()
        try:
            state.store.cleanup(now)
        except DatabaseError as exc:
            with state.lock:
                state.failed(exc)


def settled_already(counter: Leased, key: CounterKey, amount: int) -> None:
    """Under the lock: ``amount`` of ``key`` reached the shared counter after the window rolled and put
    the balance in ``unsettled``; that entry must not charge (or give back) it a second time. Nothing
    else settles entries meanwhile: the caller holds ``ledger_lock``."""
    for position, (pending, owed) in enumerate(counter.unsettled):
        if pending == key:
            if owed == amount:
                del counter.unsettled[position]
            else:
                counter.unsettled[position] = (pending, owed - amount)
            return
    counter.unsettled.append((key, -amount))  # not found (cannot happen): take it back explicitly


def give_back(state: LimiterState) -> list[tuple[CounterKey, int]]:
    """At close: unused leases go back, debts are charged, ended windows' too (under ``lock``)."""
    now = state.clock()
    returns = [item for counter in state.leased.values() for item in counter.unsettled]
    for counter in state.leased.values():
        counter.unsettled = []
        if counter.balance and counter.window_start <= now < counter.window_end:
            returns.append((counter.key(), -counter.balance))
    return returns
