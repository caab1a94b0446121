"""Dense search with Qdrant: local mode (on-disk, in process) by default, or a server when configured.

The index artifact holds portable files (vectors, chunk table); the collection is built from them once
per index digest, in the work folder (local mode) or on the server, and reused afterwards.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import EngineUnavailableError
from core.retrieval import ComparisonFilter, Filter
from retrievers.filters import mask as filter_mask
from retrievers.settings import RetrieverSettings

logger = logging.getLogger(__name__)

DEFAULT_PARAMETERS: dict[str, Any] = {"hnsw_m": 16, "ef_construct": 100}
_UPLOAD_BATCH = 512

# Local mode allows one client per storage folder in a process.
_local_clients: dict[Path, Any] = {}
_clients_lock = threading.Lock()


def close_local_clients() -> None:
    """Close local-mode clients (their folder locks) while the interpreter can still run their code."""
    with _clients_lock:
        for client in _local_clients.values():
            client.close()
        _local_clients.clear()


def _client(settings: RetrieverSettings) -> Any:
    from qdrant_client import QdrantClient

    if settings.qdrant_url:
        return QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    path = (settings.work_dir / "qdrant").resolve()
    with _clients_lock:
        if path not in _local_clients:
            path.mkdir(parents=True, exist_ok=True)
            if not _local_clients:
                atexit.register(close_local_clients)
            _local_clients[path] = QdrantClient(path=str(path))
        return _local_clients[path]


def _condition(f: ComparisonFilter) -> tuple[str, Any] | None:
    """(clause, condition) for a comparison Qdrant can evaluate natively, else None."""
    from qdrant_client import models

    v = f.value
    exact = isinstance(v, str | bool) or (isinstance(v, int) and not isinstance(v, bool))
    if f.op in ("eq", "ne") and exact:
        cond = models.FieldCondition(key=f.key, match=models.MatchValue(value=v))
        return ("must" if f.op == "eq" else "must_not", cond)
    if f.op in ("in", "nin") and isinstance(v, list | tuple) and v:
        kinds = {type(x) for x in v}
        if kinds <= {str} or kinds <= {int}:
            cond = models.FieldCondition(key=f.key, match=models.MatchAny(any=list(v)))
            return ("must" if f.op == "in" else "must_not", cond)
        return None
    if f.op in ("gt", "gte", "lt", "lte") and isinstance(v, int | float) and not isinstance(v, bool):
        return ("must", models.FieldCondition(key=f.key, range=models.Range(**{f.op: v})))
    return None


def to_qdrant(flt: Filter) -> Any | None:
    """A native Qdrant filter, or None where some part has no exact Qdrant equivalent."""
    from qdrant_client import models

    if isinstance(flt, ComparisonFilter):
        found = _condition(flt)
        if found is None:
            return None
        clause, cond = found
        return models.Filter(must=[cond]) if clause == "must" else models.Filter(must_not=[cond])
    parts: list[Any] = []
    for sub in flt.filters:
        native = to_qdrant(sub)
        if native is None:
            return None
        parts.append(native)
    return models.Filter(must=parts) if flt.op == "and" else models.Filter(should=parts)


class QdrantIndex:
    def __init__(self, client: Any, collection: str, attributes: Sequence[Mapping[str, Any]]) -> None:
        self.client = client
        self.collection = collection
        self._attributes = attributes

    @staticmethod
    def parameters_of(given: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**DEFAULT_PARAMETERS, **(given or {})}

    @classmethod
    def open(
        cls,
        digest: str,
        vectors: npt.NDArray[np.float32],
        attributes: Sequence[Mapping[str, Any]],
        settings: RetrieverSettings,
        parameters: Mapping[str, Any] | None = None,
    ) -> QdrantIndex:
        from qdrant_client import models

        params = cls.parameters_of(parameters)
        collection = "aihub-" + digest.removeprefix("sha256:")[:32]
        try:
            client = _client(settings)
            if client.collection_exists(collection):
                if client.count(collection, exact=True).count == len(vectors):
                    return cls(client, collection, attributes)
                client.delete_collection(collection)  # a partial upload from an interrupted open
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=vectors.shape[1], distance=models.Distance.DOT),
                hnsw_config=models.HnswConfigDiff(
                    m=int(params["hnsw_m"]), ef_construct=int(params["ef_construct"])
                ),
            )
            for start in range(0, len(vectors), _UPLOAD_BATCH):
                end = min(start + _UPLOAD_BATCH, len(vectors))
                client.upsert(
                    collection,
                    points=models.Batch(
                        ids=list(range(start, end)),
                        vectors=vectors[start:end].tolist(),
                        payloads=[dict(a) for a in attributes[start:end]],
                    ),
                    wait=True,
                )
        except (OSError, RuntimeError, ValueError) as exc:
            raise EngineUnavailableError(f"Qdrant failed to open collection {collection}: {exc}") from exc
        logger.info("Qdrant collection %s built (%d points)", collection, len(vectors))
        return cls(client, collection, attributes)

    def _filter(self, flt: Filter | None) -> Any | None:
        from qdrant_client import models

        if flt is None:
            return None
        native = to_qdrant(flt)
        if native is not None:
            return native
        # No exact native form (e.g. string ranges): the same predicate, evaluated here, as an id list.
        rows: list[Any] = np.flatnonzero(filter_mask(flt, self._attributes)).tolist()
        return models.Filter(must=[models.HasIdCondition(has_id=rows)])

    def search(
        self, queries: npt.NDArray[np.float32], k: int, flt: Filter | None = None
    ) -> list[list[tuple[int, float]]]:
        from qdrant_client import models

        query_filter = self._filter(flt)
        requests = [
            models.QueryRequest(query=q.tolist(), limit=k, filter=query_filter, with_payload=False)
            for q in queries
        ]
        try:
            responses = self.client.query_batch_points(self.collection, requests=requests)
        except (OSError, RuntimeError, ValueError) as exc:
            raise EngineUnavailableError(f"Qdrant search failed: {exc}") from exc
        return [[(int(p.id), float(p.score)) for p in r.points] for r in responses]
