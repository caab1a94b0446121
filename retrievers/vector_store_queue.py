"""The vector stores' ingestion queue: a file row ``in_progress`` (or ``removing``) is work still to
do; a worker claims a store's job with a lease, takes its pending files and settles them in the commit
that records the new index version."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.sql import SqlDatabase
from core.vector_stores import ChunkingSpec, FileError
from retrievers.vector_store_schema import REMOVING, chunking_spec


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A file row a job works on; ``job`` tells whether the row changed since it was read."""

    file_id: str
    status: str
    chunking: ChunkingSpec
    attributes: Mapping[str, Any]
    job: str


class IngestQueue:
    """The worker's side of ``VectorStoreRecords``."""

    db: SqlDatabase

    def stores_with_work(self) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT store_id FROM aihub_vector_store_files WHERE status IN ('in_progress', ?)",
            (REMOVING,),
        )
        return sorted(str(row[0]) for row in rows)

    def claim(self, store_id: str, owner: str, lease_s: float) -> bool:
        """Takes the store's job, unless another live worker holds it (its lease has not run out)."""
        now = time.time()
        rows = self.db.execute(
            "UPDATE aihub_vector_stores SET lease_owner = ?, lease_until = ? WHERE id = ? "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?) RETURNING id",
            (owner, now + lease_s, store_id, owner, now),
        )
        return bool(rows)

    def release(self, store_id: str, owner: str) -> None:
        self.db.execute(
            "UPDATE aihub_vector_stores SET lease_owner = NULL, lease_until = NULL "
            "WHERE id = ? AND lease_owner = ?",
            (store_id, owner),
        )

    def pending(self, store_id: str, limit: int) -> list[PendingFile]:
        rows = self.db.execute(
            "SELECT file_id, status, chunk_tokens, overlap_tokens, attributes, job "
            "FROM aihub_vector_store_files WHERE store_id = ? AND status IN ('in_progress', ?) "
            "ORDER BY created, file_id LIMIT ?",
            (store_id, REMOVING, limit),
        )
        return [
            PendingFile(str(f), str(s), chunking_spec(size, overlap), json.loads(a), str(job))
            for f, s, size, overlap, a, job in rows
        ]

    def fail(self, store_id: str, file: PendingFile, error: FileError) -> None:
        self.db.execute(
            "UPDATE aihub_vector_store_files SET status = 'failed', error_code = ?, error_message = ? "
            "WHERE store_id = ? AND file_id = ? AND job = ?",
            (error.code, error.message, store_id, file.file_id, file.job),
        )

    def commit(self, store_id: str, digest: str | None, done: Sequence[PendingFile]) -> bool:
        """Records the new index version and settles the files it holds, in one transaction; False when
        the store was deleted meanwhile. A row whose job token changed (re-added) stays queued."""
        with self.db.transaction() as cursor:
            cursor.execute(
                self.db.sql(
                    "UPDATE aihub_vector_stores SET index_digest = ?, last_active = ? "
                    "WHERE id = ? RETURNING id"
                ),
                (digest, time.time(), store_id),
            )
            if not cursor.fetchall():
                return False
            for file in done:
                if file.status == REMOVING:
                    statement = (
                        "DELETE FROM aihub_vector_store_files WHERE store_id = ? AND file_id = ? AND job = ?"
                    )
                else:
                    statement = (
                        "UPDATE aihub_vector_store_files SET status = 'completed' "
                        "WHERE store_id = ? AND file_id = ? AND job = ?"
                    )
                cursor.execute(self.db.sql(statement), (store_id, file.file_id, file.job))
        return True

    def renew(self, store_id: str, owner: str, lease_s: float) -> None:
        self.db.execute(
            "UPDATE aihub_vector_stores SET lease_until = ? WHERE id = ? AND lease_owner = ?",
            (time.time() + lease_s, store_id, owner),
        )
