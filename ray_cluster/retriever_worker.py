"""A retriever deployment: the hub's indices, opened once per replica, queried by reference or digest.

Query embedding goes through the embedder deployment (handles), so embedders scale on their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.retrieval import Filter, IndexInfo, SearchHit, SearchMode
from hub.settings import HubSettings
from ray_cluster.embedder_proxy import EmbedderProxy, fetch_embedder_info
from retrievers.settings import RetrieverSettings

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

    from gateway.services import IndexProvider


class RetrieverWorker:
    async def __init__(  # type: ignore[misc]  # Serve awaits async constructors
        self,
        hub: HubSettings,
        retrievers: RetrieverSettings,
        embedders: Mapping[str, DeploymentHandle[Any]],
    ) -> None:
        from hub.store import LocalStore
        from retrievers.index_provider import HubIndexProvider

        proxies = {
            embedder_id: EmbedderProxy(embedder_id, handle, await fetch_embedder_info(handle, embedder_id))
            for embedder_id, handle in embedders.items()
        }
        self._provider: IndexProvider = HubIndexProvider(LocalStore(hub), proxies, retrievers)

    def list_indexes(self) -> list[IndexInfo]:
        return list(self._provider.list())

    async def open(self, ref: str) -> IndexInfo:
        return (await self._provider.open(ref)).info

    async def search(
        self,
        ref: str,
        query: str,
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[SearchHit]:
        retriever = await self._provider.open(ref)
        return await retriever.search(query, top_k=top_k, filters=filters, mode=mode)

    async def search_batch(
        self,
        ref: str,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[list[SearchHit]]:
        retriever = await self._provider.open(ref)
        return [await retriever.search(query, top_k=top_k, filters=filters, mode=mode) for query in queries]
