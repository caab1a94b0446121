"""The Embedder protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class EmbedderInfo:
    id: str  # model id, e.g. "all-minilm-l6-v2"
    dimensions: int
    max_input_tokens: int
    digest: str | None = None  # hub digest of the model artifact; indices are bound to it


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: npt.NDArray[np.float32]  # shape (n, dimensions), unit norm
    prompt_tokens: int


EmbeddingInput = str | Sequence[int]  # text, or token ids of the embedder's tokenizer


@runtime_checkable
class Embedder(Protocol):
    @property
    def info(self) -> EmbedderInfo: ...

    async def embed(self, inputs: Sequence[EmbeddingInput]) -> Embeddings:
        """Embed texts (or token-id sequences). Concurrent calls may be micro-batched together."""
        ...

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Synchronous bulk embedding for ingestion and benchmarks."""
        ...


@dataclass(frozen=True, slots=True)
class EmbeddingMethod:
    """How bulk vectors were computed; an index records it beside the embedder's digest."""

    dtype: str  # "float32" or "bfloat16" (vectors are always stored as float32, unit norm)
    runtime: str  # e.g. "torch-cpu", "torch-cuda", "onnxruntime"

    def as_spec(self) -> dict[str, str]:
        return {"dtype": self.dtype, "runtime": self.runtime}


TokenProgress = Callable[[int, int], None]  # (tokens done, tokens in all)


@runtime_checkable
class BulkEmbedder(Embedder, Protocol):
    """An embedder with a separate bulk path (ingestion): possibly lower precision, reporting tokens.

    Vectors from it and from ``embed``/``embed_batch`` are interchangeable within the bound its
    ``bulk_method`` documents; the query path is not affected by the bulk path's settings.
    """

    @property
    def bulk_method(self) -> EmbeddingMethod: ...

    def embed_bulk(
        self, texts: Sequence[str], progress: TokenProgress | None = None
    ) -> npt.NDArray[np.float32]: ...
