"""Opens the hub's index artifacts as retrievers, cached by digest (gateway.services.IndexProvider)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Protocol

from core.embedder import Embedder
from core.errors import AihubError, ArtifactNotFoundError, EmbedderMismatchError, InvalidReferenceError
from core.refs import is_digest
from core.retrieval import Filter, IndexInfo, SearchHit, SearchMode
from core.store import Artifact, ArtifactStore
from core.vector_stores import STORE_NAMESPACE, is_store_id
from retrievers.index_builder import embedder_digest_of, is_dense
from retrievers.index_retriever import IndexRetriever, open_index
from retrievers.settings import RetrieverSettings

logger = logging.getLogger(__name__)


def _info(artifact: Artifact, ref: str) -> IndexInfo:
    spec = artifact.spec
    counts = spec.get("counts", {})
    return IndexInfo(
        ref=ref,
        digest=artifact.digest,
        backend=str(spec.get("backend")),
        embedder_digest=embedder_digest_of(spec),
        documents=int(counts.get("documents", 0)),
        chunks=int(counts.get("chunks", 0)),
    )


class StoreIndexes(Protocol):
    def index_ref(self, store_id: str) -> str | None:
        """The pinned reference of a ``vs_…`` store's current index; None while it has none."""
        ...


class EmptyRetriever:
    """A vector store without an index yet (no file ingested): every search finds nothing."""

    def __init__(self, store_id: str) -> None:
        self._info = IndexInfo(store_id, "", "none", None, 0, 0)

    @property
    def info(self) -> IndexInfo:
        return self._info

    async def search(
        self, query: str, *, top_k: int = 10, filters: Filter | None = None, mode: SearchMode | None = None
    ) -> list[SearchHit]:
        return []

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[list[SearchHit]]:
        return [[] for _ in queries]


class HubIndexProvider:
    def __init__(
        self,
        store: ArtifactStore,
        embedders: Mapping[str, Embedder],
        settings: RetrieverSettings | None = None,
        vector_stores: StoreIndexes | None = None,
    ) -> None:
        self.store = store
        self.embedders = embedders
        self.settings = settings or RetrieverSettings()
        # ``vs_…`` ids of stores made over the API resolve to their current index version.
        self.vector_stores = vector_stores
        self._open: OrderedDict[str, IndexRetriever] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    def list(self) -> Sequence[IndexInfo]:
        infos = []
        for artifact in self.store.list("index"):
            if artifact.name.startswith(f"{STORE_NAMESPACE}/"):
                continue  # a project's own store: listed by its vs_ id, to that project only
            ref = f"{artifact.name}:{artifact.tags[0]}" if artifact.tags else artifact.pinned_ref
            infos.append(_info(artifact, ref))
        return infos

    def _resolve(self, ref: str) -> Artifact:
        if is_digest(ref):  # a bare digest: find the index it names among the tagged ones
            for artifact in self.store.list("index"):
                if artifact.digest == ref:
                    return artifact
            raise ArtifactNotFoundError(f"no index with digest {ref}; use name@{ref} for an untagged one")
        artifact = self.store.resolve(ref)
        if artifact.kind != "index":
            raise InvalidReferenceError(f"{ref} is a {artifact.kind}, not an index")
        return artifact

    def embedder_for(self, artifact: Artifact) -> Embedder | None:
        if not is_dense(str(artifact.spec.get("backend"))):
            return None
        wanted = embedder_digest_of(artifact.spec)
        for embedder in self.embedders.values():
            if embedder.info.digest == wanted:
                return embedder
        have = ", ".join(f"{e.info.id}@{e.info.digest}" for e in self.embedders.values()) or "none"
        raise EmbedderMismatchError(
            f"index {artifact.pinned_ref} was built with embedder {artifact.spec.get('embedder')}; "
            f"this server has {have}"
        )

    def open_sync(self, ref: str) -> IndexRetriever:
        artifact = self._resolve(ref)
        cached = self._open.get(artifact.digest)
        if cached is not None:
            self._open.move_to_end(artifact.digest)
            return cached
        embedder = self.embedder_for(artifact)
        folder = self.store.materialize(artifact.pinned_ref)
        retriever = open_index(
            folder,
            artifact.spec,
            ref=ref,
            digest=artifact.digest,
            embedder=embedder,
            settings=self.settings,
        )
        self._open[artifact.digest] = retriever
        while len(self._open) > self.settings.index_cache_size:
            self._open.popitem(last=False)
        logger.info("opened index %s (%s)", ref, artifact.digest)
        return retriever

    def _store_ref(self, store_id: str) -> str | None:
        if self.vector_stores is None:
            raise ArtifactNotFoundError(f"no vector store {store_id}: this server keeps none")
        return self.vector_stores.index_ref(store_id)

    async def open(self, ref: str) -> IndexRetriever | EmptyRetriever:
        if is_store_id(ref):
            pinned = await asyncio.to_thread(self._store_ref, ref)
            if pinned is None:
                return EmptyRetriever(ref)
            ref = pinned
        if not is_digest(ref):
            # An index already open needs no thread hop (a quarter of a millisecond here): resolving
            # to a digest is a stat of the hub's index file and a lookup (or a stat of the blob).
            try:
                _, digest = self.store.resolve_digest(ref)
            except AihubError:
                digest = None  # the full resolve below raises the proper error
            opened = self._open.get(digest) if digest is not None else None
            if opened is not None:
                return opened
        artifact = await asyncio.to_thread(self._resolve, ref)
        cached = self._open.get(artifact.digest)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(artifact.digest, asyncio.Lock())
        async with lock:  # one load per digest, however many requests arrive meanwhile
            return await asyncio.to_thread(self.open_sync, artifact.pinned_ref)
