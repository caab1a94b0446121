"""The Embedder protocol."""

from __future__ import annotations

from collections.abc import Sequence
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
