"""The vector stores' rows in the gateway database: stores, their files (each one's ingestion state)
and file batches. The database is the jobs' queue: a file row ``in_progress`` (or ``removing``) is
work still to do, so a gateway that stops mid-job leaves it there for the next start (the worker's side
of that queue: ``retrievers.vector_store_queue``)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from core.sql import SqlDatabase
from core.vector_stores import (
    FileBatchRecord,
    FileCounts,
    FileError,
    NewFile,
    VectorStoreFileRecord,
    VectorStoreRecord,
    store_tag,
)
from retrievers.vector_store_queue import IngestQueue
from retrievers.vector_store_schema import (
    FILE_COLUMNS,
    REMOVING,
    SCHEMA,
    STORE_COLUMNS,
    chunking_spec,
    file_counts,
)


class VectorStoreRecords(IngestQueue):
    def __init__(self, database: SqlDatabase) -> None:
        self.db = database
        database.apply_schema(SCHEMA)

    # --- stores ----------------------------------------------------------------------------------

    def insert_store(self, store_id: str, project: str, name: str, metadata: Mapping[str, str]) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO aihub_vector_stores (id, project, name, created, last_active, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (store_id, project, name, now, now, json.dumps(dict(metadata))),
        )

    def counts(self, store_id: str, batch_id: str | None = None) -> FileCounts:
        where, params = "store_id = ?", [store_id]
        if batch_id is not None:
            where, params = where + " AND batch_id = ?", [*params, batch_id]
        return file_counts(
            self.db.execute(
                f"SELECT status, COUNT(*) FROM aihub_vector_store_files WHERE {where} GROUP BY status", params
            )
        )

    def _store(self, row: tuple[Any, ...]) -> VectorStoreRecord:
        store_id, project, name, created, last_active, metadata, digest = row
        usage = self.db.execute(
            "SELECT COALESCE(SUM(usage_bytes), 0) FROM aihub_vector_store_files "
            "WHERE store_id = ? AND status = 'completed'",
            (store_id,),
        )
        return VectorStoreRecord(
            id=store_id,
            project=project,
            name=name,
            created_at=int(created),
            last_active_at=int(last_active),
            metadata=json.loads(metadata),
            file_counts=self.counts(store_id),
            usage_bytes=int(usage[0][0]),
            index_digest=digest,
            index_ref=store_tag(store_id),
        )

    def store(self, store_id: str, project: str | None = None) -> VectorStoreRecord | None:
        where, params = "id = ?", [store_id]
        if project is not None:
            where, params = where + " AND project = ?", [*params, project]
        rows = self.db.execute(f"SELECT {STORE_COLUMNS} FROM aihub_vector_stores WHERE {where}", params)
        return self._store(rows[0]) if rows else None

    def stores(self, project: str, descending: bool) -> list[VectorStoreRecord]:
        direction = "DESC" if descending else "ASC"
        rows = self.db.execute(
            f"SELECT {STORE_COLUMNS} FROM aihub_vector_stores WHERE project = ? "
            f"ORDER BY created {direction}, id {direction}",
            (project,),
        )
        return [self._store(row) for row in rows]

    def update_store(self, store_id: str, name: str | None, metadata: Mapping[str, str] | None) -> None:
        if name is not None:
            self.db.execute("UPDATE aihub_vector_stores SET name = ? WHERE id = ?", (name, store_id))
        if metadata is not None:
            self.db.execute(
                "UPDATE aihub_vector_stores SET metadata = ? WHERE id = ?",
                (json.dumps(dict(metadata)), store_id),
            )
        self.touch(store_id)

    def touch(self, store_id: str) -> None:
        self.db.execute(
            "UPDATE aihub_vector_stores SET last_active = ? WHERE id = ?", (time.time(), store_id)
        )

    def delete_store(self, store_id: str) -> None:
        with self.db.transaction() as cursor:
            for table, column in (
                ("aihub_vector_store_files", "store_id"),
                ("aihub_vector_store_batches", "store_id"),
                ("aihub_vector_stores", "id"),
            ):
                cursor.execute(self.db.sql(f"DELETE FROM {table} WHERE {column} = ?"), (store_id,))

    # --- files and batches -----------------------------------------------------------------------

    def upsert_files(
        self, store_id: str, files: Sequence[NewFile], sizes: Mapping[str, int], batch_id: str | None
    ) -> None:
        """Queues each file (again): status in_progress, a new job token, the error cleared."""
        now = time.time()
        rows = [
            (
                store_id,
                f.file_id,
                now,
                sizes[f.file_id],
                f.chunking.max_chunk_size_tokens,
                f.chunking.chunk_overlap_tokens,
                json.dumps(dict(f.attributes)),
                batch_id,
                secrets.token_hex(8),
            )
            for f in files
        ]
        with self.db.transaction() as cursor:
            if batch_id is not None:
                cursor.execute(
                    self.db.sql(
                        "INSERT INTO aihub_vector_store_batches (id, store_id, created, cancelled) "
                        "VALUES (?, ?, ?, 0)"
                    ),
                    (batch_id, store_id, now),
                )
            cursor.executemany(
                self.db.sql(
                    "INSERT INTO aihub_vector_store_files (store_id, file_id, status, created, usage_bytes, "
                    "chunk_tokens, overlap_tokens, attributes, batch_id, job) "
                    "VALUES (?, ?, 'in_progress', ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (store_id, file_id) DO UPDATE SET status = 'in_progress', "
                    "usage_bytes = excluded.usage_bytes, chunk_tokens = excluded.chunk_tokens, "
                    "overlap_tokens = excluded.overlap_tokens, attributes = excluded.attributes, "
                    "batch_id = excluded.batch_id, job = excluded.job, "
                    "error_code = NULL, error_message = NULL"
                ),
                rows,
            )
            cursor.execute(
                self.db.sql("UPDATE aihub_vector_stores SET last_active = ? WHERE id = ?"), (now, store_id)
            )

    def _file(self, row: tuple[Any, ...]) -> VectorStoreFileRecord:
        (file_id, store_id, status, created, usage, size, overlap, attributes, code, message, batch, _) = row
        return VectorStoreFileRecord(
            id=file_id,
            store_id=store_id,
            status=status,
            created_at=int(created),
            usage_bytes=int(usage),
            chunking=chunking_spec(size, overlap),
            attributes=json.loads(attributes),
            last_error=FileError(code, message) if code else None,
            batch_id=batch,
        )

    def files(
        self, store_id: str, *, descending: bool, status: str | None = None, batch_id: str | None = None
    ) -> list[VectorStoreFileRecord]:
        where, params = "store_id = ? AND status <> ?", [store_id, REMOVING]
        if status is not None:
            where, params = where + " AND status = ?", [*params, status]
        if batch_id is not None:
            where, params = where + " AND batch_id = ?", [*params, batch_id]
        direction = "DESC" if descending else "ASC"
        rows = self.db.execute(
            f"SELECT {FILE_COLUMNS} FROM aihub_vector_store_files WHERE {where} "
            f"ORDER BY created {direction}, file_id {direction}",
            params,
        )
        return [self._file(row) for row in rows]

    def file(self, store_id: str, file_id: str) -> VectorStoreFileRecord | None:
        rows = self.db.execute(
            f"SELECT {FILE_COLUMNS} FROM aihub_vector_store_files WHERE store_id = ? AND file_id = ? "
            "AND status <> ?",
            (store_id, file_id, REMOVING),
        )
        return self._file(rows[0]) if rows else None

    def mark_removing(self, store_id: str, file_id: str) -> None:
        self.db.execute(
            "UPDATE aihub_vector_store_files SET status = ?, job = ? WHERE store_id = ? AND file_id = ?",
            (REMOVING, secrets.token_hex(8), store_id, file_id),
        )

    def batch(self, store_id: str, batch_id: str) -> FileBatchRecord | None:
        rows = self.db.execute(
            "SELECT id, store_id, created, cancelled FROM aihub_vector_store_batches "
            "WHERE id = ? AND store_id = ?",
            (batch_id, store_id),
        )
        if not rows:
            return None
        _, _, created, cancelled = rows[0]
        return FileBatchRecord(
            batch_id, store_id, int(created), self.counts(store_id, batch_id), bool(cancelled)
        )

    def cancel_batch(self, store_id: str, batch_id: str) -> None:
        """Files not yet indexed are cancelled; a build already under way still indexes those it took."""
        with self.db.transaction() as cursor:
            cursor.execute(
                self.db.sql("UPDATE aihub_vector_store_batches SET cancelled = 1 WHERE id = ?"), (batch_id,)
            )
            cursor.execute(
                self.db.sql(
                    "UPDATE aihub_vector_store_files SET status = 'cancelled' "
                    "WHERE store_id = ? AND batch_id = ? AND status = 'in_progress'"
                ),
                (store_id, batch_id),
            )
