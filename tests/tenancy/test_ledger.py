"""The usage ledger on a real SQLite file and a real PostgreSQL server: batches, exactly-once rows,
close, and the concurrent writers of several gateway processes sharing one SQLite file."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.tenancy import UsageRecord, UsageSink
from tenancy.database import Database
from tenancy.ledger import UsageLedger
from tenancy.settings import LedgerSettings


def fast(**fields: Any) -> LedgerSettings:
    """Short intervals, so that the tests do not wait on the writer's clock."""
    return LedgerSettings(
        **({"flush_interval_s": 0.05, "retry_interval_s": 0.05, "close_timeout_s": 10.0} | fields)
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenancy.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    yield db
    db.close()


def usage(index: int, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{index}",
        "started_at": 1_750_000_000.0 + index,
        "project": "climate",
        "key_id": "key_a",
        "endpoint": "chat",
        "model": "smollm2",
        "status": 200,
        "latency_s": 0.5,
        "prompt_tokens": 10,
        "completion_tokens": 5,
    }
    return UsageRecord(**(values | fields))


def rows(database: Database) -> list[tuple[Any, ...]]:
    return database.execute("SELECT request_id FROM usage ORDER BY request_id")


def count(database: Database) -> int:
    return int(database.execute("SELECT COUNT(*) FROM usage")[0][0])


def eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_rows_are_written_in_batches_exactly_once(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    real = database.executemany

    def spy(statement: str, params: Any) -> None:  # counts the real calls' sizes
        batches.append(len(params))
        real(statement, params)

    monkeypatch.setattr(database, "executemany", spy)
    ledger = UsageLedger(database, fast(batch_size=100), tmp_path / "spill.jsonl")
    assert isinstance(ledger, UsageSink)
    for index in range(1234):
        ledger.record(usage(index))
    assert ledger.flush(timeout_s=30)
    ledger.close()
    assert [row[0] for row in rows(database)] == sorted(f"req-{i}" for i in range(1234))
    assert sum(batches) == 1234 and max(batches) <= 100 and len(batches) <= 1234 // 10
    stats = ledger.stats()
    assert (stats.written, stats.spilled, stats.dropped, stats.queued) == (1234, 0, 0, 0)
    assert not (tmp_path / "spill.jsonl").exists() or (tmp_path / "spill.jsonl").stat().st_size == 0


def test_every_field_round_trips_streamed_and_interrupted_included(
    database: Database, tmp_path: Path
) -> None:
    ledger = UsageLedger(database, fast(), tmp_path / "spill.jsonl")
    # An interrupted stream carries the tokens actually generated before the client left.
    ledger.record(
        usage(
            1,
            composition="sha256:" + "c" * 64,
            streamed=True,
            interrupted=True,
            completion_tokens=17,
            status=499,
        )
    )
    ledger.record(
        usage(2, key_id="oidc:https://idp.example#alice", endpoint="embeddings", completion_tokens=0)
    )
    assert ledger.flush(timeout_s=30)
    ledger.close()
    got = database.execute(
        "SELECT request_id, started_at, project, key_id, endpoint, model, composition, status, latency_s, "
        "prompt_tokens, completion_tokens, streamed, interrupted FROM usage ORDER BY request_id"
    )
    first, second = ([*row[:11], bool(row[11]), bool(row[12])] for row in got)
    assert first == [
        "req-1", 1_750_000_001.0, "climate", "key_a", "chat", "smollm2", "sha256:" + "c" * 64,
        499, 0.5, 10, 17, True, True,
    ]  # fmt: skip
    assert second[3:5] == ["oidc:https://idp.example#alice", "embeddings"]
    assert second[6] is None and second[10:] == [0, False, False]


async def test_aclose_writes_what_is_queued(database: Database, tmp_path: Path) -> None:
    # Neither a full batch nor the interval comes: only aclose() writes these rows.
    settings = LedgerSettings(batch_size=10_000, flush_interval_s=60, close_timeout_s=10)
    ledger = UsageLedger(database, settings, tmp_path / "spill.jsonl")
    for index in range(300):
        ledger.record(usage(index))
    started = time.monotonic()
    await ledger.aclose()
    assert time.monotonic() - started < 10
    assert count(database) == 300
    await ledger.aclose()  # idempotent
    # A row recorded after close is kept in the spill file, not lost.
    ledger.record(usage(999))
    assert (tmp_path / "spill.jsonl").read_text().count("req-999") == 1
    assert ledger.stats().spilled == 1 and ledger.stats().dropped == 0


def test_close_is_bounded_when_the_writer_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    release = threading.Event()
    real = database.executemany

    def hanging(statement: str, params: Any) -> None:  # a database that stops answering mid-batch
        release.wait(30)
        real(statement, params)

    monkeypatch.setattr(database, "executemany", hanging)
    ledger = UsageLedger(database, fast(batch_size=5), tmp_path / "spill.jsonl")
    for index in range(20):
        ledger.record(usage(index))
    time.sleep(0.2)  # the writer is stuck in its first batch
    started = time.monotonic()
    ledger.close(timeout_s=0.5)
    assert time.monotonic() - started < 3
    spilled = (tmp_path / "spill.jsonl").read_text().splitlines()
    assert len(spilled) == 20  # the stuck batch too: a replay skips it if it commits after all
    release.set()
    monkeypatch.setattr(database, "executemany", real)
    eventually(lambda: count(database) == 5)  # the stuck batch did commit
    replayer = UsageLedger(database, fast(), tmp_path / "spill.jsonl")
    eventually(lambda: count(database) == 20)
    replayer.close()
    assert [row[0] for row in rows(database)] == sorted(f"req-{i}" for i in range(20))


def test_two_gateway_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    """Two Database objects (two connections each, like two processes) and two ledgers writing small
    batches at once: WAL and busy_timeout make every transaction wait its turn, none fails."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    settings = fast(batch_size=25)
    ledgers = [
        UsageLedger(db, settings, tmp_path / f"spill-{n}.jsonl") for n, db in enumerate((first, second))
    ]

    def produce(ledger: UsageLedger, prefix: str) -> None:
        for index in range(3000):
            ledger.record(usage(index, request_id=f"{prefix}-{index:05d}"))

    threads = [threading.Thread(target=produce, args=(ledger, f"g{n}")) for n, ledger in enumerate(ledgers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ledger in ledgers:
        assert ledger.flush(timeout_s=60)
        ledger.close()
        # Rarely, two first connections racing to switch a new file to WAL get "database is locked"
        # without waiting (SQLite's rule for that switch): the batch then goes through the spill file.
        stats = ledger.stats()
        assert stats.dropped == 0 and stats.replayed == stats.spilled
    got = [row[0] for row in rows(first)]
    assert len(got) == 6000 and len(set(got)) == 6000
    first.close()
    second.close()


def test_a_row_that_cannot_be_stored_is_refused_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    ledger = UsageLedger(database, fast(on_failure="fail_closed"), tmp_path / "spill.jsonl")
    with caplog.at_level(logging.ERROR, logger="tenancy.ledger"):
        ledger.record(usage(1, completion_tokens=-3))  # a gateway bug must not wedge the writer
    ledger.record(usage(2))
    assert ledger.flush(timeout_s=30) and ledger.accepting()
    ledger.close()
    assert [row[0] for row in rows(database)] == ["req-2"]
    assert ledger.stats().dropped == 1
    assert any("usage row refused" in message and "req-1" in message for message in caplog.messages)
    database.close()
