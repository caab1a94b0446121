"""``/v1/files``: uploaded bytes as hub blobs (content-addressed), their records in the gateway database."""

from __future__ import annotations

import secrets
import time
from pathlib import PurePosixPath
from typing import Literal

from core.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from core.files import FILE_PURPOSES, FILE_SUFFIXES, StoredFile
from core.sql import SqlDatabase
from hub.blobs import BlobStore

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS aihub_files (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        filename TEXT NOT NULL,
        bytes BIGINT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        purpose TEXT NOT NULL,
        digest TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS aihub_files_project ON aihub_files (project, created)",
)
_COLUMNS = "id, project, filename, bytes, created, purpose, digest"


class FileNotFoundInProjectError(NotFoundError):
    default_code = "file_not_found"


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def _row(row: tuple[object, ...]) -> StoredFile:
    file_id, project, filename, size, created, purpose, digest = row
    return StoredFile(
        id=str(file_id),
        project=str(project),
        filename=str(filename),
        bytes=int(size),  # type: ignore[call-overload]
        created_at=int(float(created)),  # type: ignore[arg-type]
        purpose=str(purpose),
        digest=str(digest),
    )


def check_upload(filename: str, purpose: str, size: int, max_bytes: int) -> None:
    if purpose not in FILE_PURPOSES:
        raise InvalidRequestError(
            f"Invalid purpose {purpose!r}: this server takes {', '.join(FILE_PURPOSES)}.", param="purpose"
        )
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"File {filename!r} has {size:,} bytes, more than the limit of {max_bytes:,} bytes.", param="file"
        )
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise InvalidRequestError(
            f"Invalid file format {suffix or '(none)'!r} of {filename!r}: supported formats are "
            f"{', '.join(FILE_SUFFIXES)}.",
            param="file",
            code="unsupported_file",
        )
    if size == 0:
        raise InvalidRequestError(f"File {filename!r} is empty.", param="file")


class UploadedFiles:
    """core.files.FileStore over a SQL database and the hub's blob store."""

    def __init__(self, database: SqlDatabase, blobs: BlobStore, max_bytes: int) -> None:
        self.database = database
        self.blobs = blobs
        self.max_bytes = max_bytes
        database.apply_schema(SCHEMA)

    def create(self, project: str, filename: str, purpose: str, data: bytes) -> StoredFile:
        filename = PurePosixPath(filename.replace("\\", "/")).name or "upload"
        check_upload(filename, purpose, len(data), self.max_bytes)
        digest = self.blobs.put_bytes(data)
        record = StoredFile(new_id("file-"), project, filename, len(data), int(time.time()), purpose, digest)
        self.database.execute(
            f"INSERT INTO aihub_files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.id, project, filename, len(data), time.time(), purpose, digest),
        )
        return record

    def list(
        self,
        project: str,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> tuple[list[StoredFile], bool]:
        direction = "DESC" if order == "desc" else "ASC"
        where, params = "project = ?", [project]
        if purpose is not None:
            where, params = where + " AND purpose = ?", [*params, purpose]
        rows = self.database.execute(
            f"SELECT {_COLUMNS} FROM aihub_files WHERE {where} ORDER BY created {direction}, id {direction}",
            params,
        )
        files = [_row(r) for r in rows]
        if after is not None:
            position = next((i for i, f in enumerate(files) if f.id == after), None)
            if position is None:
                raise InvalidRequestError(f"'after' names no file: {after!r}", param="after")
            files = files[position + 1 :]
        return files[:limit], len(files) > limit

    def get(self, project: str, file_id: str) -> StoredFile:
        rows = self.database.execute(
            f"SELECT {_COLUMNS} FROM aihub_files WHERE id = ? AND project = ?", (file_id, project)
        )
        if not rows:
            raise FileNotFoundInProjectError(f"No such File object: {file_id}", param="file_id")
        return _row(rows[0])

    def content(self, project: str, file_id: str) -> bytes:
        return self.blobs.read_bytes(self.get(project, file_id).digest)

    def delete(self, project: str, file_id: str) -> None:
        self.get(project, file_id)
        # The blob stays: another file may hold the same bytes, and index versions keep theirs as layers.
        self.database.execute("DELETE FROM aihub_files WHERE id = ?", (file_id,))
