"""An opened index artifact behind core.retrieval.Retriever: dense, BM25 or hybrid search."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.embedder import Embedder
from core.errors import IntegrityError, InvalidRequestError
from core.retrieval import Filter, IndexInfo, SearchHit, SearchMode
from retrievers import fusion
from retrievers.bm25_index import Bm25Index
from retrievers.chunk_table import ChunkTable
from retrievers.faiss_index import FaissIndex
from retrievers.filters import mask as filter_mask
from retrievers.index_builder import VECTORS_FILE, check_embedder, embedder_digest_of
from retrievers.qdrant_index import QdrantIndex
from retrievers.settings import RetrieverSettings

logger = logging.getLogger(__name__)

Ranked = list[tuple[int, float]]
DEFAULT_MODE: dict[str, SearchMode] = {
    "faiss": "dense",
    "qdrant": "dense",
    "bm25": "bm25",
    "hybrid": "hybrid",
}


class IndexRetriever:
    def __init__(
        self,
        info: IndexInfo,
        table: ChunkTable,
        *,
        embedder: Embedder | None,
        faiss_index: FaissIndex | None = None,
        qdrant_index: QdrantIndex | None = None,
        bm25: Bm25Index | None = None,
        fusion_parameters: Mapping[str, Any] | None = None,
        candidates: int = 100,
    ) -> None:
        self._info = info
        self.table = table
        self._attributes = [row.attributes for row in table.rows]
        self._embedder = embedder
        self._faiss = faiss_index
        self._qdrant = qdrant_index
        self._bm25 = bm25
        self._fusion = fusion.parameters_of(fusion_parameters)
        self._candidates = candidates
        # Fixed per index: computed once, since a search is tens of microseconds on small indices.
        self._modes = self._supported_modes()
        self._default_mode = DEFAULT_MODE[info.backend]

    @property
    def info(self) -> IndexInfo:
        return self._info

    @property
    def modes(self) -> tuple[SearchMode, ...]:
        return self._modes

    def _supported_modes(self) -> tuple[SearchMode, ...]:
        dense = self._faiss is not None or self._qdrant is not None
        found: list[SearchMode] = []
        if dense:
            found.append("dense")
        if self._bm25 is not None:
            found.append("bm25")
        if dense and self._bm25 is not None:
            found.append("hybrid")
        return tuple(found)

    def _mode(self, mode: SearchMode | None) -> SearchMode:
        chosen = mode or self._default_mode
        if chosen not in self._modes:
            raise InvalidRequestError(
                f"index {self._info.ref} ({self._info.backend}) cannot search in {chosen!r} mode; "
                f"it supports {list(self.modes)}",
                param="mode",
            )
        return chosen

    # --- the ranked lists ------------------------------------------------------------------------

    def _dense(self, vectors: npt.NDArray[np.float32], k: int, filters: Filter | None) -> list[Ranked]:
        if self._qdrant is not None:
            return self._qdrant.search(vectors, k, filters)
        assert self._faiss is not None
        allowed = filter_mask(filters, self._attributes) if filters is not None else None
        scores, ids = self._faiss.search(vectors, k, allowed)
        # tolist() first: iterating numpy scalars costs more than the FAISS search on small indices.
        return [
            [(i, s) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids.tolist(), scores.tolist(), strict=True)
        ]

    def _lexical(self, queries: Sequence[str], k: int, filters: Filter | None) -> list[Ranked]:
        assert self._bm25 is not None
        allowed = filter_mask(filters, self._attributes) if filters is not None else None
        if allowed is not None and not allowed.any():
            return [[] for _ in queries]
        return self._bm25.search(queries, k, allowed)

    def _rank(
        self,
        queries: Sequence[str],
        vectors: npt.NDArray[np.float32] | None,
        top_k: int,
        filters: Filter | None,
        mode: SearchMode,
    ) -> list[list[SearchHit]]:
        if mode == "dense":
            assert vectors is not None
            if filters is None and self._faiss is not None:
                return self._dense_hits(vectors, top_k)
            ranked = self._dense(vectors, top_k, filters)
        elif mode == "bm25":
            ranked = self._lexical(queries, top_k, filters)
        else:
            assert vectors is not None
            depth = max(top_k, self._candidates)
            dense = self._dense(vectors, depth, filters)
            lexical = self._lexical(queries, depth, filters)
            ranked = [fusion.fuse(d, b, self._fusion)[:top_k] for d, b in zip(dense, lexical, strict=True)]
        rows = self.table.rows
        return [[rows[i].hit(score) for i, score in hits[:top_k]] for hits in ranked]

    def _dense_hits(self, vectors: npt.NDArray[np.float32], top_k: int) -> list[list[SearchHit]]:
        """FAISS without filters, the common case: hits straight from the result arrays."""
        assert self._faiss is not None
        scores, ids = self._faiss.search(vectors, top_k)
        rows = self.table.rows
        return [
            [rows[i].hit(s) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids.tolist(), scores.tolist(), strict=True)
        ]

    # --- the Retriever protocol -------------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[SearchHit]:
        if top_k <= 0:
            raise InvalidRequestError("top_k must be positive", param="max_num_results")
        chosen = self._mode(mode)
        vectors = None
        if chosen != "bm25":
            assert self._embedder is not None
            vectors = (await self._embedder.embed([query])).vectors
            if chosen == "dense" and filters is None and self._faiss is not None:
                return self._dense_hits(vectors, top_k)[0]
        return self._rank([query], vectors, top_k, filters, chosen)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        filters: Filter | None = None,
        mode: SearchMode | None = None,
    ) -> list[list[SearchHit]]:
        if not queries:
            return []
        chosen = self._mode(mode)
        vectors = None
        if chosen != "bm25":
            assert self._embedder is not None
            vectors = self._embedder.embed_batch(list(queries))
        return self._rank(list(queries), vectors, top_k, filters, chosen)


def open_index(
    folder: Path,
    spec: Mapping[str, Any],
    *,
    ref: str,
    digest: str,
    embedder: Embedder | None,
    settings: RetrieverSettings,
) -> IndexRetriever:
    """Open a materialized index artifact; refuses an embedder other than the one it was built with."""
    backend = str(spec.get("backend"))
    if backend not in DEFAULT_MODE:
        raise IntegrityError(f"index {ref}: unknown backend {backend!r}")
    check_embedder(spec, embedder)
    params: Mapping[str, Any] = spec.get("parameters", {})
    table = ChunkTable.read(folder)
    vectors = None
    if backend != "bm25":
        vectors = np.load(folder / VECTORS_FILE)
        if len(vectors) != len(table):
            raise IntegrityError(f"index {ref}: {len(vectors)} vectors for {len(table)} chunks")
    info = IndexInfo(
        ref=ref,
        digest=digest,
        backend=backend,
        embedder_digest=embedder_digest_of(spec),
        documents=table.documents,
        chunks=len(table),
    )
    faiss_index = qdrant_index = bm25 = None
    if backend in ("faiss", "hybrid"):
        assert vectors is not None
        faiss_index = FaissIndex.load(folder, vectors, params.get("faiss"))
    if backend == "qdrant":
        assert vectors is not None
        attributes = [row.attributes for row in table.rows]
        qdrant_index = QdrantIndex.open(digest, vectors, attributes, settings, params.get("qdrant"))
    if backend in ("bm25", "hybrid"):
        bm25 = Bm25Index.load(folder, params.get("bm25"))
    return IndexRetriever(
        info,
        table,
        embedder=embedder,
        faiss_index=faiss_index,
        qdrant_index=qdrant_index,
        bm25=bm25,
        fusion_parameters=params.get("fusion"),
        candidates=settings.candidates,
    )
