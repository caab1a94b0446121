"""An embedder deployment: one embedder (e.g. MiniLM) per replica; concurrent calls micro-batch inside."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.embedder import Embedder, EmbedderInfo, EmbeddingInput, Embeddings
from core.errors import InvalidSpecError
from core.model_config import ModelConfig
from hub.settings import HubSettings
from retrievers.settings import RetrieverSettings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def build_embedder(spec: ModelConfig, hub: HubSettings, retrievers: RetrieverSettings) -> Embedder:
    if spec.ref is None:
        raise InvalidSpecError(f"embedder {spec.id!r} needs a hub reference `ref`")
    from hub.store import LocalStore
    from retrievers.factory import build_embedder as build_retriever_embedder

    store = LocalStore(hub)
    artifact = store.resolve(spec.ref)
    embedder: Embedder = build_retriever_embedder(
        spec.id, store.materialize(artifact.pinned_ref), retrievers, digest=artifact.digest
    )
    return embedder


class EmbedderWorker:
    def __init__(self, spec: ModelConfig, hub: HubSettings, retrievers: RetrieverSettings) -> None:
        self._embedder = build_embedder(spec, hub, retrievers)

    def info(self) -> EmbedderInfo:
        return self._embedder.info

    async def embed(self, inputs: Sequence[EmbeddingInput]) -> Embeddings:
        return await self._embedder.embed(inputs)

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        # Sync method: Serve runs it in a thread, so the replica keeps answering meanwhile.
        return self._embedder.embed_batch(texts)
