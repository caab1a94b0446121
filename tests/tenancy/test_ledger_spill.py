"""The ledger when rows cannot go to the database: a full queue, a database that is down (really down:
a SQLite folder replaced by a plain file, a PostgreSQL database not created yet, a closed port), the
spill file and its replay, and fail_closed. No row is lost or counted twice."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.tenancy import UsageRecord
from tenancy.database import Database
from tenancy.ledger import UsageLedger
from tenancy.settings import LedgerSettings
from tenancy.usage_schema import as_json, to_row


def fast(**fields: Any) -> LedgerSettings:
    """Short intervals, so that the tests do not wait on the writer's clock."""
    return LedgerSettings(
        **({"flush_interval_s": 0.05, "retry_interval_s": 0.05, "close_timeout_s": 10.0} | fields)
    )


Broken = tuple[Database, Callable[[], None]]


def usage(index: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{index:04d}",
        started_at=1_750_000_000.0 + index,
        project="climate",
        key_id="key_a",
        endpoint="chat",
        model="smollm2",
        status=200,
        latency_s=0.1,
        prompt_tokens=3,
        completion_tokens=4,
    )


def request_ids(database: Database) -> list[str]:
    return [row[0] for row in database.execute("SELECT request_id FROM usage ORDER BY request_id")]


def spill_files(spill: Path) -> list[Path]:
    found = []
    for path in spill.parent.glob(f"{spill.name}*"):
        try:
            if path.stat().st_size > 0:
                found.append(path)
        except FileNotFoundError:  # claimed or replayed between the listing and the stat
            continue
    return found


def spill_lines(spill: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in spill_files(spill))


def eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def closed_port_database() -> Database:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Database(f"postgresql://aihub@127.0.0.1:{port}/nothing")


@pytest.fixture(params=["sqlite", "postgresql"])
def working(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tenancy.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    yield db
    db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def broken(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broken]:
    """A database that cannot be opened, and the function that repairs it."""
    if request.param == "sqlite":
        folder = tmp_path / "db"
        db = Database(f"sqlite:///{folder / 'tenancy.db'}")
        folder.rmdir()
        folder.write_text("not a folder")  # sqlite3 cannot open the file under it

        def repair() -> None:
            folder.unlink()
            folder.mkdir()
    else:
        server = request.getfixturevalue("postgres")
        name = f"t_{uuid.uuid4().hex[:12]}"
        db = Database(server.url.rsplit("/", 1)[0] + f"/{name}")  # not created yet

        def repair() -> None:
            import psycopg

            with psycopg.connect(server.url, autocommit=True) as connection:
                connection.execute(f"CREATE DATABASE {name}")

    yield db, repair
    db.close()


def test_database_down_spills_then_replays_without_loss_or_duplicates(broken: Broken, tmp_path: Path) -> None:
    database, repair = broken
    spill = tmp_path / "spill.jsonl"
    ledger = UsageLedger(database, fast(batch_size=50), spill)
    for index in range(120):
        ledger.record(usage(index))
    assert ledger.flush(timeout_s=30)  # spilled counts as handled
    assert ledger.accepting()  # spill serves on
    stats = ledger.stats()
    assert (stats.spilled, stats.written, stats.dropped, stats.database_ok) == (120, 0, 0, False)
    assert spill_lines(spill) == 120
    repair()
    eventually(lambda: ledger.stats().replayed == 120)
    for index in range(120, 150):
        ledger.record(usage(index))
    assert ledger.flush(timeout_s=30)
    ledger.close()
    assert request_ids(database) == [f"req-{i:04d}" for i in range(150)]
    assert spill_files(spill) == []


def test_a_closed_port_spills_and_the_next_start_replays_once(working: Database, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    down = closed_port_database()
    first = UsageLedger(down, fast(), spill)
    for index in range(40):
        first.record(usage(index))
    first.close()
    assert first.stats().spilled == 40 and first.stats().dropped == 0
    # A crash between a replay's insert and its delete leaves a claimed copy behind: replayed again,
    # it must not count a request twice.
    shutil.copy(spill, spill.with_name(f"{spill.name}.replay-crashed"))
    second = UsageLedger(working, fast(), spill)
    eventually(lambda: spill_files(spill) == [])
    second.close()
    assert request_ids(working) == [f"req-{i:04d}" for i in range(40)]
    assert second.stats().replayed == 80  # rows read back; the copy's 40 were already there


def test_a_full_queue_spills_then_replays(working: Database, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    settings = LedgerSettings(queue_size=10, batch_size=1000, flush_interval_s=60, close_timeout_s=10)
    ledger = UsageLedger(working, settings, spill)
    for index in range(25):
        ledger.record(usage(index))  # never blocks: rows 10… go to the spill file
    assert ledger.accepting()
    assert ledger.stats().overflowed == 15 and spill_lines(spill) == 15
    assert ledger.flush(timeout_s=30)
    eventually(lambda: len(request_ids(working)) == 25)
    ledger.close()
    assert request_ids(working) == [f"req-{i:04d}" for i in range(25)]
    assert spill_files(spill) == []


def test_fail_closed_refuses_while_the_database_is_down_and_loses_nothing(
    broken: Broken, tmp_path: Path
) -> None:
    database, repair = broken
    spill = tmp_path / "spill.jsonl"
    ledger = UsageLedger(database, fast(on_failure="fail_closed"), spill)
    eventually(lambda: not ledger.accepting())  # the writer's first probe found it down
    for index in range(7):  # requests admitted before the outage finish and record their usage
        ledger.record(usage(index))
    time.sleep(0.3)
    assert not ledger.accepting() and not ledger.flush(timeout_s=0.2)
    assert ledger.stats().spilled == 0  # held in memory and retried, not spilled
    repair()
    eventually(ledger.accepting)
    assert ledger.flush(timeout_s=30)
    ledger.close()
    assert request_ids(database) == [f"req-{i:04d}" for i in range(7)]
    assert ledger.stats().spilled == 0 and spill_files(spill) == []


def test_fail_closed_full_queue_refuses_and_keeps_the_overflow(working: Database, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    settings = LedgerSettings(
        on_failure="fail_closed", queue_size=5, batch_size=100, flush_interval_s=60, close_timeout_s=10
    )
    ledger = UsageLedger(working, settings, spill)
    eventually(lambda: ledger.stats().database_ok)
    for index in range(5):
        ledger.record(usage(index))
    assert not ledger.accepting()  # the gateway answers 503 now
    ledger.record(usage(5))  # a request admitted just before: its row is kept all the same
    assert spill_lines(spill) == 1
    assert ledger.flush(timeout_s=30)
    assert ledger.accepting()
    eventually(lambda: len(request_ids(working)) == 6)
    ledger.close()


def test_fail_closed_close_while_down_keeps_the_rows(working: Database, tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    ledger = UsageLedger(closed_port_database(), fast(on_failure="fail_closed"), spill)
    for index in range(3):
        ledger.record(usage(index))
    ledger.close(timeout_s=5)
    assert spill_lines(spill) == 3 and ledger.stats().dropped == 0
    replayer = UsageLedger(working, fast(), spill)
    eventually(lambda: replayer.stats().replayed == 3)
    replayer.close()
    assert request_ids(working) == ["req-0000", "req-0001", "req-0002"]


def test_a_torn_spill_line_is_set_aside_not_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tenancy.db'}")
    spill = tmp_path / "spill.jsonl"
    good = [json.dumps(as_json(to_row(usage(index)))) for index in range(2)]
    torn = json.dumps(as_json(to_row(usage(2))))[:40]
    wrong: dict[str, Any] = {"id": "x", "request_id": "y"}
    spill.write_text(f"{good[0]}\n{json.dumps(wrong)}\n{good[1]}\n{torn}")
    with caplog.at_level(logging.ERROR, logger="tenancy.spill"):
        ledger = UsageLedger(database, fast(), spill)
        eventually(lambda: spill_files(spill) == [spill.with_name("spill.jsonl.rejected")])
        ledger.close()
    assert request_ids(database) == ["req-0000", "req-0001"]
    assert spill.with_name("spill.jsonl.rejected").read_text() == f"{json.dumps(wrong)}\n{torn}\n"
    assert sum("is not a usage row" in message for message in caplog.messages) == 2
    database.close()


def test_rows_that_cannot_be_kept_anywhere_are_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unwritable = tmp_path / "a-folder"
    unwritable.mkdir()
    with caplog.at_level(logging.ERROR, logger="tenancy.ledger"):
        ledger = UsageLedger(closed_port_database(), fast(), unwritable)
        for index in range(4):
            ledger.record(usage(index))
        ledger.close()
    assert ledger.stats().dropped == 4
    lost = [message for message in caplog.messages if message.startswith("usage row lost")]
    assert len(lost) == 4 and '"request_id":"req-0003"' in lost[-1]
