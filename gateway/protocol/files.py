"""Wire models of ``/v1/files`` (OpenAI's ``OpenAIFile``, ``ListFilesResponse``, ``DeleteFileResponse``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from core.files import StoredFile


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"  # deprecated by OpenAI, still required by its schema

    @classmethod
    def of(cls, record: StoredFile) -> FileObject:
        return cls(
            id=record.id,
            bytes=record.bytes,
            created_at=record.created_at,
            filename=record.filename,
            purpose=record.purpose,
        )


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True
