"""Stored ``/v1/responses`` objects (``core.responses.ResponseStore``) in the tenancy database, or in a
SQLite file of their own when tenancy is off. One row per response, its parts as one JSON document,
capped in size: a store that only grows must not take one client's megabytes per turn."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from core.errors import PayloadTooLargeError
from core.responses import StoredResponse
from tenancy.database import Database, DatabaseError

# Named apart from the files and vector-store tables that share the database.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS gateway_responses (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS gateway_responses_project ON gateway_responses (project, created_at)",
)
DEFAULT_MAX_ROW_BYTES = 1 << 20


class SqlResponseStore:
    def __init__(self, database: Database, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> None:
        self.database = database
        self._max_row_bytes = max_row_bytes
        try:
            database.apply_schema(SCHEMA)
        except DatabaseError:  # gateways starting together race on CREATE … IF NOT EXISTS
            time.sleep(0.2)
            database.apply_schema(SCHEMA)

    @property
    def max_row_bytes(self) -> int:
        return self._max_row_bytes

    def put(self, row: StoredResponse) -> None:
        body = orjson.dumps(
            {"response": row.response, "input_items": row.input_items, "history": row.history}
        ).decode()
        size = len(body.encode())
        if size > self._max_row_bytes:
            raise PayloadTooLargeError(
                f"The response and its conversation take {size} bytes, above the stored-response "
                f"limit of {self._max_row_bytes} bytes: start a new conversation, or pass store=false.",
                code="response_too_large",
            )
        self.database.execute(
            "INSERT INTO gateway_responses (id, project, created_at, body) VALUES (?, ?, ?, ?)",
            (row.id, row.project, row.created_at, body),
        )

    def get(self, project: str, response_id: str) -> StoredResponse | None:
        rows = self.database.execute(
            "SELECT created_at, body FROM gateway_responses WHERE id = ? AND project = ?",
            (response_id, project),
        )
        if not rows:
            return None
        created_at, body = rows[0]
        parts = orjson.loads(body)
        return StoredResponse(
            id=response_id,
            project=project,
            created_at=float(created_at),
            response=parts["response"],
            input_items=parts["input_items"],
            history=parts.get("history", ()),
        )

    def delete(self, project: str, response_id: str) -> bool:
        rows = self.database.execute(
            "DELETE FROM gateway_responses WHERE id = ? AND project = ? RETURNING id", (response_id, project)
        )
        return bool(rows)


def open_response_store(home: Path, max_row_bytes: int = DEFAULT_MAX_ROW_BYTES) -> SqlResponseStore:
    """The store of a gateway without tenancy: the gateway's SQLite file ``<home>/gateway.db`` (files and
    vector stores keep their rows there too)."""
    url = f"sqlite:///{(home / 'gateway.db').expanduser().absolute()}"
    return SqlResponseStore(Database(url), max_row_bytes)
