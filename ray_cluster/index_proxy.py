"""IndexProvider and Retriever protocols over a Ray Serve handle of a ``RetrieverWorker``.

The worker holds the real index provider (FAISS / Qdrant / BM25 indices, opened once and cached) and
embeds queries through the embedder deployment; the gateway only sends query text and gets hits back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.retrieval import Filter, IndexInfo, SearchHit, SearchMode
from ray_cluster.ray_errors import map_ray_error

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle


class RetrieverProxy:
    def __init__(self, ref: str, handle: DeploymentHandle[Any], info: IndexInfo) -> None:
        self._ref = ref
        self._handle = handle
        self._info = info

    @property
    def info(self) -> IndexInfo:
        return self._info

    async def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[SearchHit]:
        try:
            hits: list[SearchHit] = await self._handle.search.remote(
                self._ref, query, top_k=top_k, filters=filters, mode=mode
            )
        except Exception as exc:
            raise map_ray_error(exc, f"index {self._ref}") from exc
        return hits

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[list[SearchHit]]:
        """Synchronous; for evaluation and benchmarks outside an event loop."""
        try:
            hits: list[list[SearchHit]] = self._handle.search_batch.remote(
                self._ref, list(queries), top_k=top_k, filters=filters, mode=mode
            ).result()
        except Exception as exc:
            raise map_ray_error(exc, f"index {self._ref}") from exc
        return hits


class IndexProviderProxy:
    """``gateway.services.IndexProvider`` backed by the retriever deployment."""

    def __init__(self, handle: DeploymentHandle[Any]) -> None:
        self._handle = handle
        self._listing: tuple[IndexInfo, ...] = ()

    def list(self) -> Sequence[IndexInfo]:
        """The listing as of the last ``refresh`` (the ingress refreshes it every second).

        The protocol's list() is synchronous, and waiting on a handle inside the ingress's event loop
        would stall the router that runs on that same loop.
        """
        return self._listing

    async def refresh(self) -> None:
        try:
            self._listing = tuple(await self._handle.list_indexes.remote())
        except Exception as exc:
            raise map_ray_error(exc, "the retriever deployment") from exc

    async def open(self, ref: str) -> RetrieverProxy:
        try:
            info: IndexInfo = await self._handle.open.remote(ref)
        except Exception as exc:
            raise map_ray_error(exc, f"index {ref}") from exc
        # Later calls name the pinned digest, so every worker replica serves the same version.
        return RetrieverProxy(info.digest or ref, self._handle, info)
