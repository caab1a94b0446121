"""The usage ledger: one row per request, written off the request path in batches.

``record()`` only appends to a bounded in-memory queue; one writer thread takes batches of
``batch_size`` rows (or what came within ``flush_interval_s``) and writes each with one ``executemany``
in one transaction. A thread, not an asyncio task: the database drivers are synchronous, and
``record()`` then works from sync code too. The writer alone touches the ``usage`` table, so gateway
requests never wait on a database lock.

When rows cannot go to the database (it is down, or the queue is full) ``settings.on_failure`` decides:

* ``spill``: serve, and append the rows to a local JSON-lines file (fsync per batch); the writer replays
  it into the database once the database works again, and at start-up.
* ``fail_closed``: ``accepting()`` turns False, so the gateway answers 503 to new requests; the writer
  keeps its batch and retries. Rows of requests already admitted when the queue is full, and rows still
  unwritten at close, go to the spill file all the same: the policy refuses work, it loses no usage.

Rows are lost only when the spill file cannot be written either, or when a row cannot be stored at all
(a negative token count): they are counted (``stats().dropped``) and logged one by one at ERROR level.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from core.tenancy import UsageRecord
from tenancy.database import Database
from tenancy.settings import LedgerSettings
from tenancy.spill import SpillFile
from tenancy.usage_schema import INSERT, USAGE_SCHEMA, Row, as_json, from_json, to_row

logger = logging.getLogger(__name__)

WARN_EVERY_S = 10.0  # one warning per interval while the queue overflows: logs must not flood either
SPILL_RETRY_S = 30.0  # a spill file that cannot be read is tried again after this long


def spill_path(settings: LedgerSettings, home: Path) -> Path:
    """``settings.spill_file``, else ``<home>/usage-spill.jsonl``."""
    return settings.spill_file or home / "usage-spill.jsonl"


@dataclass(frozen=True, slots=True)
class LedgerStats:
    queued: int  # rows waiting in memory
    written: int  # rows the writer put in the database
    spilled: int  # rows appended to the spill file
    replayed: int  # spilled rows read back into the database
    overflowed: int  # rows that found the queue full (spilled from record())
    dropped: int  # rows lost: unstorable, or the spill file failed too (each one logged at ERROR)
    database_ok: bool


class UsageLedger:
    """``core.tenancy.UsageSink`` over a ``Database``; starts its writer thread at once."""

    def __init__(self, database: Database, settings: LedgerSettings, spill_path: Path) -> None:
        self._db = database
        self._settings = settings
        self._fail_closed = settings.on_failure == "fail_closed"
        self._spill = SpillFile(spill_path)
        self._queue: deque[Row] = deque()
        self._cond = threading.Condition()
        self._accepted = 0  # rows ever put in the queue
        self._handled = 0  # of those, rows written or spilled: flush() waits for it to catch up
        self._inflight: list[Row] = []  # the batch the writer holds (spilled by close() if it hangs)
        self._inflight_failed = False  # fail_closed: the database refused that batch; retried later
        self._database_ok = True
        self._retry_at = 0.0
        self._schema_ready = False
        self._spill_waiting = True  # checked at start-up: a previous run may have left rows
        self._replay_after = 0.0  # monotonic time before which the spill file is not read again
        self._flush_wanted = False
        self._closing = False
        self._abandoned = False  # close() timed out: the writer stops without touching rows again
        self._closed = False
        self._written = self._spilled = self._replayed = self._overflowed = self._dropped = 0
        self._last_warning = 0.0
        self._thread = threading.Thread(target=self._run, name="usage-ledger", daemon=True)
        self._thread.start()

    # The request path.

    def record(self, row: UsageRecord) -> None:
        """Queues the row; never waits on the database. A full queue (or a closed ledger) spills it."""
        try:
            data = to_row(row)
        except ValueError as exc:  # a gateway bug (negative tokens…): logged, never retried forever
            logger.error("usage row refused (%s): %r", exc, row)
            with self._cond:
                self._dropped += 1
            return
        with self._cond:
            if not self._closing and len(self._queue) < self._settings.queue_size:
                self._queue.append(data)
                self._accepted += 1
                if len(self._queue) == self._settings.batch_size:
                    self._cond.notify_all()
                return
            self._overflowed += 1
            closed = self._closing
        if not closed:
            self._warn(
                "usage ledger queue full (%d rows): spilling to %s", len(self._queue), self._spill.path
            )
        # A buffered append: the rows reach the kernel now; the writer fsyncs them on its next round.
        # After close nobody will: fsync at once, and leave no file open.
        self._spill_rows([data], sync=closed)
        if closed:
            self._spill.close()

    def accepting(self) -> bool:
        """Whether new requests may be served. Always True with ``spill``. With ``fail_closed``: False
        while the database fails, while the writer holds a batch it could not write, or while the queue
        is full; the gateway answers 503 then."""
        if not self._fail_closed:
            return True
        with self._cond:
            return (
                self._database_ok
                and not self._inflight_failed
                and len(self._queue) < self._settings.queue_size
                and not self._closing
            )

    # Flushing and closing.

    def flush(self, timeout_s: float | None = None) -> bool:
        """Waits until every row queued before the call is written (or spilled); False on time-out
        (``fail_closed`` with the database down). ``timeout_s`` None: ``close_timeout_s``."""
        timeout_s = self._settings.close_timeout_s if timeout_s is None else timeout_s
        with self._cond:
            target = self._accepted
            self._flush_wanted = True
            self._cond.notify_all()
            done = self._cond.wait_for(lambda: self._handled >= target or self._abandoned, timeout_s)
        self._sync_spill()
        return done and not self._abandoned

    def close(self, timeout_s: float | None = None) -> None:
        """Writes what is queued and stops the writer, within ``timeout_s`` (default ``close_timeout_s``).
        Rows the writer could not write by then go to the spill file (replayed at the next start)."""
        with self._cond:
            if self._closed:
                return
            self._closed = self._closing = True
            self._cond.notify_all()
        self._thread.join(self._settings.close_timeout_s if timeout_s is None else timeout_s)
        if self._thread.is_alive():
            # Stuck in the database. Its batch may still commit: spilling it too is safe, since a
            # replay skips ids already present.
            with self._cond:
                self._abandoned = True
                rows = self._inflight + list(self._queue)
                self._queue.clear()
                self._cond.notify_all()
            logger.warning("usage ledger writer did not finish in time; spilling %d rows", len(rows))
            self._spill_rows(rows, sync=True)
        self._spill.close()

    async def aclose(self) -> None:
        """``close()`` off the event loop (bounded by ``close_timeout_s``)."""
        await asyncio.to_thread(self.close)

    def stats(self) -> LedgerStats:
        with self._cond:
            return LedgerStats(
                queued=len(self._queue),
                written=self._written,
                spilled=self._spilled,
                replayed=self._replayed,
                overflowed=self._overflowed,
                dropped=self._dropped,
                database_ok=self._database_ok,
            )

    # The writer thread.

    def _run(self) -> None:
        settings = self._settings
        self._replay()  # at start-up: checks the database (and its schema), replays a previous run's spill
        while True:
            with self._cond:
                if not self._inflight_failed:
                    self._cond.wait_for(
                        lambda: (
                            len(self._queue) >= settings.batch_size or self._closing or self._flush_wanted
                        ),
                        settings.flush_interval_s,
                    )
                    count = min(len(self._queue), settings.batch_size)
                    self._inflight = [self._queue.popleft() for _ in range(count)]
                    if not self._queue:
                        self._flush_wanted = False
                elif not self._closing:  # fail_closed, database down: wait before trying again
                    self._cond.wait_for(lambda: self._closing, max(0.0, self._retry_at - time.monotonic()))
                if self._abandoned:
                    return
                batch, closing = self._inflight, self._closing
            if batch:
                self._write(batch, closing)
            else:
                self._sync_spill()
                # Also probes a failed database when idle: fail_closed must notice it is back.
                if self._replay_due():
                    self._replay()
            with self._cond:
                done = self._abandoned or (closing and not self._queue and not self._inflight)
            if done:
                # Rows a burst overflowed into the spill file: into the database before the process
                # ends (close() bounds this; a replay cut short goes on at the next start).
                if closing and self._spill_waiting and self._replay_due():
                    self._replay()
                return

    def _write(self, batch: list[Row], closing: bool) -> None:
        down = not self._database_ok and time.monotonic() < self._retry_at
        if down and not self._fail_closed:
            self._handle(batch, written=False)  # do not wait on a database known down for every batch
            return
        if not down:
            try:
                self._insert(batch)
            except Exception as exc:  # any failure: the rows must go somewhere else
                self._failed(exc)
            else:
                self._handle(batch, written=True)
                if self._replay_due():
                    self._replay()
                return
        if self._fail_closed and not closing:
            with self._cond:
                self._inflight_failed = True  # keep the batch; retried after retry_interval_s
            return
        self._handle(batch, written=False)

    def _handle(self, batch: list[Row], *, written: bool) -> None:
        if not written:
            self._spill_rows(batch, sync=True)
        with self._cond:
            if self._abandoned:
                return
            if written:
                self._written += len(batch)
            self._handled += len(batch)
            self._inflight = []
            self._inflight_failed = False
            self._cond.notify_all()

    def _ensure_database(self) -> None:
        """Applies the schema first, and again as a probe after a failure (idempotent); raises while
        the database fails."""
        if self._schema_ready and self._database_ok:
            return
        self._db.apply_schema(USAGE_SCHEMA)
        self._schema_ready = True
        with self._cond:
            was_ok, self._database_ok = self._database_ok, True
        if not was_ok:
            logger.info("usage ledger: the database works again")

    def _insert(self, rows: list[Row]) -> None:
        self._ensure_database()
        self._db.executemany(INSERT, rows)

    def _failed(self, exc: Exception) -> None:
        with self._cond:
            was_ok, self._database_ok = self._database_ok, False
            self._retry_at = time.monotonic() + self._settings.retry_interval_s
        if was_ok:
            action = "refusing requests" if self._fail_closed else f"spilling to {self._spill.path}"
            logger.error("usage ledger cannot write to %r (%s); %s", self._db, exc, action)

    def _replay_due(self) -> bool:
        # Also probes a failed database when idle: fail_closed must notice it is back.
        waiting = self._spill_waiting or not self._database_ok
        now = time.monotonic()
        return waiting and (self._database_ok or now >= self._retry_at) and now >= self._replay_after

    def _replay(self) -> None:
        """Spilled rows into the database, file by file; a file is deleted once all its rows are in."""
        if self._abandoned:  # close() gave up on this thread: it must not start new work
            return
        self._spill_waiting = False
        try:
            # Claim only once the database answers: a claimed file per retry during an outage would pile up.
            self._ensure_database()
            if not self._spill.pending():
                return
            replayed = self._spill.replay(
                self._insert, from_json, self._settings.batch_size, stop=lambda: self._abandoned
            )
            with self._cond:
                self._replayed += replayed
        except OSError:
            self._spill_waiting = True
            self._replay_after = time.monotonic() + SPILL_RETRY_S
            logger.exception("usage ledger: cannot replay the spill file %s", self._spill.path)
        except Exception as exc:
            self._spill_waiting = True
            self._failed(exc)

    def _spill_rows(self, rows: list[Row], *, sync: bool) -> None:
        if not rows:
            return
        records = [as_json(row) for row in rows]
        try:
            self._spill.append(records, sync=sync)
        except OSError:
            logger.exception("usage ledger: cannot write the spill file %s", self._spill.path)
            for record in records:  # the log is the last place these rows exist
                logger.error("usage row lost: %s", json.dumps(record, separators=(",", ":")))
            with self._cond:
                self._dropped += len(rows)
            return
        with self._cond:
            self._spilled += len(rows)
        self._spill_waiting = True

    def _sync_spill(self) -> None:
        try:
            self._spill.sync()
        except OSError:
            logger.exception("usage ledger: cannot fsync the spill file %s", self._spill.path)

    def _warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            logger.warning(message, *args)
