"""Usage reports on SQLite and PostgreSQL: sums per model, key, day and project, time ranges, and a
project's report never holding another project's rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.tenancy import UsageRecord
from tenancy.database import Database
from tenancy.ledger import UsageLedger
from tenancy.settings import LedgerSettings
from tenancy.usage_report import UsageSummary, usage_report

DAY1 = datetime(2025, 6, 1, 23, 30, tzinfo=UTC).timestamp()  # 30 minutes before midnight UTC
DAY2 = datetime(2025, 6, 2, 0, 15, tzinfo=UTC).timestamp()

# project, key, model, day, prompt, completion, streamed, interrupted, status
ROWS = [
    ("climate", "key_a", "smollm2", DAY1, 100, 50, False, False, 200),
    ("climate", "key_a", "rag/docs:prod", DAY1, 300, 20, True, False, 200),
    ("climate", "key_b", "smollm2", DAY2, 10, 7, True, True, 200),  # a stream the client left
    ("climate", "key_b", "smollm2", DAY2, 5, 0, False, False, 429),
    ("physics", "key_p", "smollm2", DAY1, 1000, 1000, False, False, 200),
    ("physics", "key_p", "rag/docs:prod", DAY2, 2000, 2000, True, True, 200),
]


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """Both projects' rows, written through the ledger."""
    tmp = tmp_path_factory.mktemp("report")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'tenancy.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    db = Database(url)
    ledger = UsageLedger(db, LedgerSettings(flush_interval_s=0.05), tmp / "spill.jsonl")
    for index, (project, key, model, day, prompt, completion, streamed, interrupted, status) in enumerate(
        ROWS
    ):
        ledger.record(
            UsageRecord(
                request_id=f"r{index}",
                started_at=day + index,
                project=project,
                key_id=key,
                endpoint="chat",
                model=model,
                status=status,
                latency_s=0.2,
                prompt_tokens=prompt,
                completion_tokens=completion,
                streamed=streamed,
                interrupted=interrupted,
            )
        )
    assert ledger.flush(timeout_s=30)
    ledger.close()
    yield db
    db.close()


def summary(
    group: str, requests: int, prompt: int, completion: int, streamed: int, interrupted: int, errors: int
) -> UsageSummary:
    return UsageSummary(group, requests, prompt, completion, streamed, interrupted, errors)


def test_report_by_model(database: Database) -> None:
    assert usage_report(database, "climate", by="model") == [
        summary("rag/docs:prod", 1, 300, 20, 1, 0, 0),
        summary("smollm2", 3, 115, 57, 1, 1, 1),
    ]


def test_report_by_key(database: Database) -> None:
    assert usage_report(database, "climate", by="key") == [
        summary("key_a", 2, 400, 70, 1, 0, 0),
        summary("key_b", 2, 15, 7, 1, 1, 1),
    ]


def test_report_by_day_is_in_utc(database: Database) -> None:
    assert usage_report(database, "climate", by="day") == [
        summary("2025-06-01", 2, 400, 70, 1, 0, 0),
        summary("2025-06-02", 2, 15, 7, 1, 1, 1),
    ]


def test_since_and_until_bound_the_range(database: Database) -> None:
    midnight = datetime(2025, 6, 2, tzinfo=UTC)
    assert [s.group for s in usage_report(database, "climate", since=midnight, by="day")] == ["2025-06-02"]
    naive = datetime(2025, 6, 2)  # taken as UTC
    assert [s.group for s in usage_report(database, "climate", until=naive, by="day")] == ["2025-06-01"]
    assert usage_report(database, "climate", since=datetime(2030, 1, 1, tzinfo=UTC)) == []


@pytest.mark.parametrize("by", ["model", "key", "day", "project"])
def test_a_project_report_never_holds_another_projects_rows(database: Database, by: str) -> None:
    climate = usage_report(database, "climate", by=by)  # type: ignore[arg-type]
    physics = usage_report(database, "physics", by=by)  # type: ignore[arg-type]
    assert sum(s.requests for s in climate) == 4 and sum(s.prompt_tokens for s in climate) == 415
    assert sum(s.requests for s in physics) == 2 and sum(s.total_tokens for s in physics) == 6000
    if by == "key":
        assert {s.group for s in climate} == {"key_a", "key_b"} and {s.group for s in physics} == {"key_p"}
    assert usage_report(database, "nobody", by=by) == []  # type: ignore[arg-type]
    # A project name that looks like SQL is a value, not SQL.
    assert usage_report(database, "climate' OR '1'='1", by=by) == []  # type: ignore[arg-type]


def test_every_project_for_an_admin(database: Database) -> None:
    assert usage_report(database, None, by="project") == [
        summary("climate", 4, 415, 77, 2, 1, 1),
        summary("physics", 2, 3000, 3000, 1, 1, 0),
    ]
    assert sum(s.requests for s in usage_report(database, None, by="model")) == 6


def test_an_empty_database_reports_nothing(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    assert usage_report(database, "climate", by="day") == []
    with pytest.raises(ValueError, match="group by"):
        usage_report(database, "climate", by="week")  # type: ignore[arg-type]
    database.close()
