"""The vector stores' tables in the gateway database, and what their rows' columns turn into."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.vector_stores import ChunkingSpec, FileCounts

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS aihub_vector_stores (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        last_active DOUBLE PRECISION NOT NULL,
        metadata TEXT NOT NULL,
        index_digest TEXT,
        lease_owner TEXT,
        lease_until DOUBLE PRECISION
    )""",
    """CREATE TABLE IF NOT EXISTS aihub_vector_store_files (
        store_id TEXT NOT NULL,
        file_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        usage_bytes BIGINT NOT NULL,
        chunk_tokens INTEGER,
        overlap_tokens INTEGER,
        attributes TEXT NOT NULL,
        error_code TEXT,
        error_message TEXT,
        batch_id TEXT,
        job TEXT NOT NULL,
        PRIMARY KEY (store_id, file_id)
    )""",
    """CREATE TABLE IF NOT EXISTS aihub_vector_store_batches (
        id TEXT PRIMARY KEY,
        store_id TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        cancelled INTEGER NOT NULL
    )""",
)
REMOVING = "removing"  # deleted from the store, still to be taken out of its index
STORE_COLUMNS = "id, project, name, created, last_active, metadata, index_digest"
FILE_COLUMNS = (
    "file_id, store_id, status, created, usage_bytes, chunk_tokens, overlap_tokens, attributes, "
    "error_code, error_message, batch_id, job"
)


def file_counts(rows: Sequence[tuple[Any, ...]]) -> FileCounts:
    by_status = {str(status): int(count) for status, count in rows}
    return FileCounts(
        in_progress=by_status.get("in_progress", 0),
        completed=by_status.get("completed", 0),
        failed=by_status.get("failed", 0),
        cancelled=by_status.get("cancelled", 0),
    )


def chunking_spec(size: Any, overlap: Any) -> ChunkingSpec:
    return ChunkingSpec(None if size is None else int(size), None if overlap is None else int(overlap))
