"""The shared counters of the limits, in the tenancy database (SQLite or PostgreSQL).

``rate_counters`` holds one row per scope (``key:<id>`` or ``project:<name>``), kind (``rpm``, ``tpm``,
``day``, ``month``) and window: ``used`` is what every process has leased or charged in that window.
A lease only ever succeeds when it fits under the cap (an atomic conditional upsert): the limit, less
for a sliding window what the previous window still carries into it, so processes together never
admit more than the limit; see ``tenancy/limits.py`` for how leases are spent.

``rate_slots`` holds, per concurrency scope, one row per process: the slots it holds and when they
expire. A process refreshes ``expires_at`` while it lives; the slots of one that crashed stop counting
once it has passed. Acquisitions of one scope are serialised by locking an anchor row (PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` serialises every writer already), so two processes cannot both take the
last slot.

Every method is synchronous (a database round trip) and raises ``DatabaseError``; the limiter calls
them from worker threads, never from the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import NamedTuple

from tenancy.database import Database, DatabaseError

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS rate_counters (
        scope TEXT NOT NULL,
        kind TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        window_end BIGINT NOT NULL,
        used BIGINT NOT NULL,
        PRIMARY KEY (scope, kind, window_start)
    )""",
    "CREATE INDEX IF NOT EXISTS rate_counters_end ON rate_counters (window_end)",
    """CREATE TABLE IF NOT EXISTS rate_slots (
        scope TEXT NOT NULL,
        process TEXT NOT NULL,
        held INTEGER NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (scope, process)
    )""",
    "CREATE INDEX IF NOT EXISTS rate_slots_process ON rate_slots (process)",
)

# The whole lease or nothing, in one statement: PostgreSQL evaluates the WHERE on the locked, newest
# version of the row, SQLite runs it inside BEGIN IMMEDIATE.
_LEASE = (
    "INSERT INTO rate_counters (scope, kind, window_start, window_end, used) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (scope, kind, window_start) DO UPDATE SET used = rate_counters.used + excluded.used "
    "WHERE rate_counters.used + excluded.used <= ? RETURNING used"
)
_CHARGE = (
    "INSERT INTO rate_counters (scope, kind, window_start, window_end, used) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (scope, kind, window_start) DO UPDATE SET used = rate_counters.used + excluded.used"
)
_WHERE = "WHERE scope = ? AND kind = ? AND window_start = ?"
_SLOTS_KIND = "slots"  # the anchor row of a concurrency scope, in rate_counters
_NEVER = 2**62  # anchor rows are never cleaned up: one small row per concurrency scope
KEEP_ENDED_S = 3600  # rows of ended windows are kept this long (for `SELECT` while debugging)


def carried(previous: int, weight: float) -> int:
    """What a previous window's ``previous`` still counts at ``weight``, rounded up (the epsilon: a
    weight like 40/60 must not round 3 * 40/60 up to 3)."""
    return max(0, math.ceil(previous * weight - 1e-9))


class CounterKey(NamedTuple):
    scope: str
    kind: str
    window_start: int
    window_end: int


class CounterStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._lock_suffix = " FOR UPDATE" if database.kind == "postgresql" else ""
        try:
            database.apply_schema(SCHEMA)
        except DatabaseError:
            # Gateways starting together race on CREATE … IF NOT EXISTS and PostgreSQL fails the losers;
            # the winner's tables are there now.
            time.sleep(0.2)
            database.apply_schema(SCHEMA)

    def lease(
        self, key: CounterKey, amount: int, limit: int, carry_weight: float = 0.0
    ) -> tuple[int, int, int]:
        """Takes up to ``amount`` of the window's allowance: ``(granted, used after, previous window's
        used)``. Grants less than asked (possibly 0) only when the counter is that close to its cap.

        The cap is ``limit`` for a fixed window. For a sliding one (``carry_weight`` > 0) it is ``limit``
        less ``carry_weight`` (the share of the last window still inside the trailing window) of what
        the previous window used: the count over the trailing window, estimated as if the previous
        window's requests were spread evenly over it. The weight only falls as time passes, so a lease
        that fits stays within the cap."""
        db = self.database
        with db.transaction() as cursor:
            previous = 0
            if carry_weight > 0:
                length = key.window_end - key.window_start
                cursor.execute(
                    db.sql(f"SELECT used FROM rate_counters {_WHERE}"),
                    (key.scope, key.kind, key.window_start - length),
                )
                rows = cursor.fetchall()
                previous = int(rows[0][0]) if rows else 0
            cap = limit - carried(previous, carry_weight)
            ask = min(amount, cap)
            if ask <= 0:  # the carry alone fills the window: nothing to write
                cursor.execute(db.sql(f"SELECT used FROM rate_counters {_WHERE}"), tuple(key[:3]))
                rows = cursor.fetchall()
                return 0, int(rows[0][0]) if rows else 0, previous
            cursor.execute(db.sql(_LEASE), (*key, ask, cap))
            rows = cursor.fetchall()
            if rows:
                return ask, int(rows[0][0]), previous
            # The whole lease does not fit: take what is left (rare: once per window and process).
            cursor.execute(
                db.sql(f"SELECT used FROM rate_counters {_WHERE}{self._lock_suffix}"), tuple(key[:3])
            )
            used = int(cursor.fetchall()[0][0])
            granted = max(0, min(ask, cap - used))
            if granted:
                cursor.execute(
                    db.sql(f"UPDATE rate_counters SET used = used + ? {_WHERE}"), (granted, *key[:3])
                )
            return granted, used + granted, previous

    def charge(self, charges: Sequence[tuple[CounterKey, int]]) -> None:
        """Adds what was spent beyond the leases (may pass the limit: it was spent) or, negative, gives
        back what a closing process leased and did not use; in one transaction."""
        if charges:
            self.database.executemany(_CHARGE, [(*key, amount) for key, amount in charges])

    def hold_slots(
        self, scope: str, process: str, want: int, limit: int, now: float, ttl_s: float
    ) -> tuple[int, int]:
        """Sets this process's slots of ``scope`` to ``want``, or to what the live rows of the other
        processes leave of ``limit``: ``(held, held by others)``."""
        db = self.database
        with db.transaction() as cursor:
            cursor.execute(
                db.sql(
                    "INSERT INTO rate_counters (scope, kind, window_start, window_end, used) "
                    "VALUES (?, ?, 0, ?, 0) ON CONFLICT (scope, kind, window_start) DO NOTHING"
                ),
                (scope, _SLOTS_KIND, _NEVER),
            )
            if self._lock_suffix:  # the anchor row's lock serialises this scope's acquisitions
                cursor.execute(
                    db.sql(f"SELECT used FROM rate_counters {_WHERE}{self._lock_suffix}"),
                    (scope, _SLOTS_KIND, 0),
                )
                cursor.fetchall()
            cursor.execute(
                db.sql(
                    "SELECT COALESCE(SUM(held), 0) FROM rate_slots "
                    "WHERE scope = ? AND process <> ? AND expires_at > ?"
                ),
                (scope, process, now),
            )
            others = int(cursor.fetchall()[0][0])
            held = max(0, min(want, limit - others))
            cursor.execute(
                db.sql(
                    "INSERT INTO rate_slots (scope, process, held, expires_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (scope, process) DO UPDATE SET held = excluded.held, "
                    "expires_at = excluded.expires_at"
                ),
                (scope, process, held, now + ttl_s),
            )
            return held, others

    def release_slots(self, releases: Sequence[tuple[str, int]], process: str) -> None:
        """Lowers this process's slots (no lock needed: fewer held slots cannot overshoot anything)."""
        db = self.database
        with db.transaction() as cursor:
            for scope, held in releases:
                if held:
                    cursor.execute(
                        db.sql("UPDATE rate_slots SET held = ? WHERE scope = ? AND process = ?"),
                        (held, scope, process),
                    )
                else:
                    cursor.execute(
                        db.sql("DELETE FROM rate_slots WHERE scope = ? AND process = ?"), (scope, process)
                    )

    def heartbeat(self, process: str, expires_at: float) -> None:
        self.database.execute("UPDATE rate_slots SET expires_at = ? WHERE process = ?", (expires_at, process))

    def forget_process(self, process: str) -> None:
        self.database.execute("DELETE FROM rate_slots WHERE process = ?", (process,))

    def cleanup(self, now: float) -> None:
        """Rows of windows that ended an hour ago and slots that expired: nothing reads them again."""
        with self.database.transaction() as cursor:
            cursor.execute(
                self.database.sql("DELETE FROM rate_counters WHERE window_end < ?"),
                (int(now) - KEEP_ENDED_S,),
            )
            cursor.execute(
                self.database.sql("DELETE FROM rate_slots WHERE expires_at < ?"), (now - KEEP_ENDED_S,)
            )
