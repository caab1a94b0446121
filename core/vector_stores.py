"""Vector stores made over the API: their records, and the service the gateway drives.

Each change of a store's files is an ingestion job run in the background; its result is a new index
artifact version in the hub (``vector-stores/<id>:latest``), whose digest the store records.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]
STATUSES: tuple[FileStatus, ...] = ("in_progress", "completed", "failed", "cancelled")
STORE_NAMESPACE = "vector-stores"  # hub names of the stores' index artifacts: vector-stores/<id>


def is_store_id(ref: str) -> bool:
    return ref.startswith("vs_")


def store_tag(store_id: str) -> str:
    return f"{STORE_NAMESPACE}/{store_id}:latest"


@dataclass(frozen=True, slots=True)
class ChunkingSpec:
    """OpenAI's chunking strategy, in tokens; ``auto`` leaves both at None (the index's defaults)."""

    max_chunk_size_tokens: int | None = None
    chunk_overlap_tokens: int | None = None

    @property
    def is_auto(self) -> bool:
        return self.max_chunk_size_tokens is None


# ``auto``: MiniLM's 256-token input, 200 words a chunk with 40 shared (retrievers.chunking's defaults).
AUTO_CHUNKING = ChunkingSpec(256, 51)


@dataclass(frozen=True, slots=True)
class FileCounts:
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.in_progress + self.completed + self.failed + self.cancelled

    def as_dict(self) -> dict[str, int]:
        return {
            "in_progress": self.in_progress,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class VectorStoreRecord:
    id: str  # vs_…
    project: str
    name: str
    created_at: int
    last_active_at: int
    metadata: Mapping[str, str]
    file_counts: FileCounts
    usage_bytes: int = 0
    index_digest: str | None = None  # the current index artifact version; None until the first build
    index_ref: str = ""  # its tag in the hub

    @property
    def status(self) -> Literal["in_progress", "completed"]:
        return "in_progress" if self.file_counts.in_progress else "completed"


@dataclass(frozen=True, slots=True)
class FileError:
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


@dataclass(frozen=True, slots=True)
class VectorStoreFileRecord:
    id: str  # the file's id, file-…
    store_id: str
    status: FileStatus
    created_at: int
    usage_bytes: int = 0
    chunking: ChunkingSpec = field(default_factory=ChunkingSpec)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    last_error: FileError | None = None
    batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class FileBatchRecord:
    id: str  # vsfb_…
    store_id: str
    created_at: int
    file_counts: FileCounts
    cancelled: bool = False

    @property
    def status(self) -> FileStatus:
        counts = self.file_counts
        if counts.in_progress:
            return "in_progress"
        if self.cancelled:
            return "cancelled"
        if counts.total and counts.failed == counts.total:
            return "failed"
        return "completed"


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to add to a store, with its own chunking and attributes."""

    file_id: str
    chunking: ChunkingSpec = field(default_factory=ChunkingSpec)
    attributes: Mapping[str, Any] = field(default_factory=dict)


Order = Literal["asc", "desc"]


@runtime_checkable
class VectorStoreService(Protocol):
    """Synchronous (database round trips): callers on the event loop use ``asyncio.to_thread``. A store
    of another project is not found (``NotFoundError``); unknown file ids too."""

    def create(
        self, project: str, name: str, files: Sequence[NewFile], metadata: Mapping[str, str]
    ) -> VectorStoreRecord: ...

    def get(self, project: str, store_id: str) -> VectorStoreRecord: ...

    def list(
        self, project: str, *, limit: int, order: Order, after: str | None
    ) -> tuple[builtins.list[VectorStoreRecord], bool]: ...

    def modify(
        self, project: str, store_id: str, *, name: str | None, metadata: Mapping[str, str] | None
    ) -> VectorStoreRecord: ...

    def delete(self, project: str, store_id: str) -> None:
        """Removes the store and its hub tag (blobs stay for whatever else references them)."""
        ...

    def add_files(
        self, project: str, store_id: str, files: Sequence[NewFile], *, batch: bool
    ) -> tuple[builtins.list[VectorStoreFileRecord], FileBatchRecord | None]:
        """Queues an ingestion job; a file already in the store is ingested again, replacing its chunks."""
        ...

    def list_files(
        self,
        project: str,
        store_id: str,
        *,
        limit: int,
        order: Order,
        after: str | None,
        status: FileStatus | None = None,
        batch_id: str | None = None,
    ) -> tuple[builtins.list[VectorStoreFileRecord], bool]: ...

    def get_file(self, project: str, store_id: str, file_id: str) -> VectorStoreFileRecord: ...

    def delete_file(self, project: str, store_id: str, file_id: str) -> None: ...

    def get_batch(self, project: str, store_id: str, batch_id: str) -> FileBatchRecord: ...

    def cancel_batch(self, project: str, store_id: str, batch_id: str) -> FileBatchRecord: ...

    def index_ref(self, store_id: str) -> str | None:
        """The pinned hub reference of the store's current index (any project); None: nothing built yet.
        Raises ``NotFoundError`` for an unknown store."""
        ...

    def start(self) -> None:
        """Starts the background ingestion worker (it resumes jobs a stopped gateway left)."""
        ...

    def close(self) -> None: ...
