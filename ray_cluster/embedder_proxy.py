"""The Embedder protocol over a Ray Serve deployment handle of an ``EmbedderWorker``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.embedder import EmbedderInfo, EmbeddingInput, Embeddings
from ray_cluster.ray_errors import map_ray_error

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from ray.serve.handle import DeploymentHandle


class EmbedderProxy:
    def __init__(self, embedder_id: str, handle: DeploymentHandle[Any], info: EmbedderInfo) -> None:
        self._id = embedder_id
        self._handle = handle
        self._info = info

    @property
    def info(self) -> EmbedderInfo:
        return self._info

    async def embed(self, inputs: Sequence[EmbeddingInput]) -> Embeddings:
        # Lists, not arbitrary sequences, so that the payload pickles small and predictably.
        payload = [item if isinstance(item, str) else list(item) for item in inputs]
        try:
            result: Embeddings = await self._handle.embed.remote(payload)
        except Exception as exc:
            raise map_ray_error(exc, f"embedder {self._id}") from exc
        return result

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Synchronous; for ingestion and benchmarks outside an event loop (driver code, threads)."""
        try:
            vectors: npt.NDArray[np.float32] = self._handle.embed_batch.remote(list(texts)).result()
        except Exception as exc:
            raise map_ray_error(exc, f"embedder {self._id}") from exc
        return vectors


async def fetch_embedder_info(handle: DeploymentHandle[Any], embedder_id: str) -> EmbedderInfo:
    try:
        info: EmbedderInfo = await handle.info.remote()
    except Exception as exc:
        raise map_ray_error(exc, f"embedder {embedder_id}") from exc
    return info
