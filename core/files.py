"""Uploaded files (``/v1/files``): the record the gateway shows, and the store that keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

FilePurpose = Literal["assistants", "user_data"]
FILE_PURPOSES: tuple[FilePurpose, ...] = ("assistants", "user_data")
# What ingestion can read (``retrievers.uploaded_documents``); other uploads are refused at once.
FILE_SUFFIXES = (
    ".txt",
    ".text",
    ".md",
    ".markdown",
    ".rst",
    ".json",
    ".jsonl",
    ".csv",
    ".html",
    ".htm",
    ".pdf",
)


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str  # file-…
    project: str
    filename: str
    bytes: int
    created_at: int  # unix seconds
    purpose: str
    digest: str  # the hub blob holding the bytes


@runtime_checkable
class FileStore(Protocol):
    """Synchronous (database and disk): callers on the event loop use ``asyncio.to_thread``.
    Files of another project are not found (``NotFoundError``)."""

    def create(self, project: str, filename: str, purpose: str, data: bytes) -> StoredFile: ...

    def list(
        self,
        project: str,
        *,
        purpose: str | None = None,
        limit: int = 10000,
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> tuple[list[StoredFile], bool]:
        """A page of the project's files and whether more follow."""
        ...

    def get(self, project: str, file_id: str) -> StoredFile: ...

    def content(self, project: str, file_id: str) -> bytes: ...

    def delete(self, project: str, file_id: str) -> None: ...
