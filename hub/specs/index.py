"""A search index: its files, the exact embedder it was built with, its parameters and counts."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from core.store import ArtifactKind
from hub.specs.base import Ref, RelativePath, SpecBase


class IndexSpec(SpecBase):
    REFERENCE_FIELDS: ClassVar[dict[str, tuple[ArtifactKind, ...]]] = {"embedder": ("model",)}

    backend: Literal["faiss", "qdrant", "bm25", "hybrid"]
    embedder: Ref | None = None
    dimension: int | None = Field(default=None, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict)
    files: list[RelativePath] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)  # e.g. documents, chunks

    @model_validator(mode="after")
    def _dense_needs_embedder(self) -> IndexSpec:
        if self.backend != "bm25" and self.embedder is None:
            raise ValueError(f"a {self.backend} index needs `embedder`, the model it was built with")
        return self
