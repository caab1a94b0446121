"""Wire models of vector stores made over the API: requests (create, modify, add files, batches) and
OpenAI's ``VectorStoreObject``, ``VectorStoreFileObject`` and ``VectorStoreFileBatchObject``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import InvalidRequestError
from core.vector_stores import (
    AUTO_CHUNKING,
    ChunkingSpec,
    FileBatchRecord,
    NewFile,
    VectorStoreFileRecord,
    VectorStoreRecord,
)

Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]], Field(max_length=16)
]
Attributes = Annotated[dict[Annotated[str, Field(max_length=64)], str | float | bool], Field(max_length=16)]


class StaticChunking(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _half_at_most(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must not exceed half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    def spec(self) -> ChunkingSpec:
        if self.type == "auto":
            return ChunkingSpec()
        if self.static is None:
            raise InvalidRequestError("a static chunking strategy needs 'static'", param="chunking_strategy")
        return ChunkingSpec(self.static.max_chunk_size_tokens, self.static.chunk_overlap_tokens)


def _spec(strategy: ChunkingStrategy | None) -> ChunkingSpec:
    return strategy.spec() if strategy is not None else ChunkingSpec()


def _no_expiry(expires_after: Any) -> None:
    if expires_after is not None:
        raise InvalidRequestError(
            "expires_after is not supported by this server: stores stay until deleted",
            param="expires_after",
            code="unsupported_parameter",
        )


class CreateVectorStoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = ""
    description: str | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata | None = None
    expires_after: dict[str, Any] | None = None

    def files(self) -> list[NewFile]:
        _no_expiry(self.expires_after)
        chunking = _spec(self.chunking_strategy)
        return [NewFile(file_id, chunking) for file_id in self.file_ids]


class UpdateVectorStoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = None
    metadata: Metadata | None = None
    expires_after: dict[str, Any] | None = None


class CreateVectorStoreFileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    file_id: str
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None

    def new_file(self) -> NewFile:
        return NewFile(self.file_id, _spec(self.chunking_strategy), dict(self.attributes or {}))


class CreateFileBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[CreateVectorStoreFileRequest] | None = Field(default=None, min_length=1, max_length=2000)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes | None = None

    def new_files(self) -> list[NewFile]:
        if (self.file_ids is None) == (self.files is None):
            raise InvalidRequestError("give exactly one of 'file_ids' and 'files'", param="file_ids")
        if self.files is not None:
            return [f.new_file() for f in self.files]
        chunking, attributes = _spec(self.chunking_strategy), dict(self.attributes or {})
        return [NewFile(file_id, chunking, attributes) for file_id in self.file_ids or ()]


# --- objects ---------------------------------------------------------------------------------------


class HubIndex(BaseModel):
    """aihub's extra field: the index artifact version the store serves, to pin in a pipeline or eval."""

    name: str  # the moving tag, vector-stores/<id>:latest
    digest: str | None  # None until the first build
    ref: str | None  # name@digest


class VectorStoreObject(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    usage_bytes: int
    file_counts: dict[str, int]
    status: Literal["in_progress", "completed", "expired"]
    last_active_at: int
    metadata: dict[str, str]
    expires_at: int | None = None
    hub_index: HubIndex

    @classmethod
    def of(cls, record: VectorStoreRecord) -> VectorStoreObject:
        name = record.index_ref.rpartition(":")[0]
        return cls(
            id=record.id,
            created_at=record.created_at,
            name=record.name,
            usage_bytes=record.usage_bytes,
            file_counts=record.file_counts.as_dict(),
            status=record.status,
            last_active_at=record.last_active_at,
            metadata=dict(record.metadata),
            hub_index=HubIndex(
                name=record.index_ref,
                digest=record.index_digest,
                ref=f"{name}@{record.index_digest}" if record.index_digest else None,
            ),
        )


class LastError(BaseModel):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


class StaticStrategy(BaseModel):
    type: Literal["static"] = "static"
    static: StaticChunking


class VectorStoreFileObject(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    usage_bytes: int
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "failed", "cancelled"]
    last_error: LastError | None
    chunking_strategy: StaticStrategy
    attributes: dict[str, str | float | bool]

    @classmethod
    def of(cls, record: VectorStoreFileRecord) -> VectorStoreFileObject:
        spec = AUTO_CHUNKING if record.chunking.is_auto else record.chunking
        error = record.last_error
        return cls(
            id=record.id,
            usage_bytes=record.usage_bytes,
            created_at=record.created_at,
            vector_store_id=record.store_id,
            status=record.status,
            last_error=LastError(code=error.code, message=error.message) if error else None,
            chunking_strategy=StaticStrategy(
                static=StaticChunking.model_construct(
                    max_chunk_size_tokens=spec.max_chunk_size_tokens,
                    chunk_overlap_tokens=spec.chunk_overlap_tokens,
                )
            ),
            attributes=dict(record.attributes),
        )


class FileBatchObject(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: Literal["in_progress", "completed", "failed", "cancelled"]
    file_counts: dict[str, int]

    @classmethod
    def of(cls, record: FileBatchRecord) -> FileBatchObject:
        return cls(
            id=record.id,
            created_at=record.created_at,
            vector_store_id=record.store_id,
            status=record.status,
            file_counts=record.file_counts.as_dict(),
        )


class ObjectList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Any]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class Deleted(BaseModel):
    id: str
    object: Literal["vector_store.deleted", "vector_store.file.deleted"]
    deleted: bool = True
