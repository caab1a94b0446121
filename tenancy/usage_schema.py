"""The ``usage`` table: one row per request, the same DDL on SQLite and PostgreSQL.

Each row gets a random ``id`` when it is recorded, and the insert ignores an id already present: a batch
written twice (a commit whose answer was lost, a spill file replayed again after a crash) never counts
a request twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from core.tenancy import UsageRecord

USAGE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS usage (
        id VARCHAR(32) PRIMARY KEY,
        request_id VARCHAR(200) NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        project VARCHAR(200) NOT NULL,
        key_id VARCHAR(500) NOT NULL,
        endpoint VARCHAR(100) NOT NULL,
        model VARCHAR(500) NOT NULL,
        composition VARCHAR(100),
        status INTEGER NOT NULL,
        latency_s DOUBLE PRECISION NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        streamed BOOLEAN NOT NULL,
        interrupted BOOLEAN NOT NULL
    )""",
    # A project's report scans its own rows in time order; an admin's spans projects by time.
    "CREATE INDEX IF NOT EXISTS usage_project_started ON usage (project, started_at)",
    "CREATE INDEX IF NOT EXISTS usage_started ON usage (started_at)",
)

# started_at is unix time (seconds, UTC), like UsageRecord's.
COLUMNS = (
    "id",
    "request_id",
    "started_at",
    "project",
    "key_id",
    "endpoint",
    "model",
    "composition",
    "status",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
    "streamed",
    "interrupted",
)
RECORD_FIELDS = COLUMNS[1:]

INSERT = (
    f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (id) DO NOTHING"
)

# A row as the queue holds it: the insert's parameters, in COLUMNS order, checked.
Row = tuple[Any, ...]


def to_row(record: UsageRecord) -> Row:
    """The record with a fresh ledger id; ValueError when a field cannot be stored."""
    return from_json({"id": uuid.uuid4().hex, **{name: getattr(record, name) for name in RECORD_FIELDS}})


def as_json(row: Row) -> dict[str, Any]:
    """The row as the spill file keeps it (one JSON object per line)."""
    return dict(zip(COLUMNS, row, strict=True))


def from_json(data: dict[str, Any]) -> Row:
    """A row from its JSON form, checked: a spill line torn or edited into a wrong shape raises ValueError."""
    try:
        row = (
            str(data["id"]),
            str(data["request_id"]),
            float(data["started_at"]),
            str(data["project"]),
            str(data["key_id"]),
            str(data["endpoint"]),
            str(data["model"]),
            None if data.get("composition") is None else str(data["composition"]),
            int(data["status"]),
            float(data["latency_s"]),
            int(data["prompt_tokens"]),
            int(data["completion_tokens"]),
            bool(data["streamed"]),
            bool(data["interrupted"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a usage row: {type(exc).__name__}: {exc}") from None
    if row[10] < 0 or row[11] < 0:
        raise ValueError("negative token count")
    return row
