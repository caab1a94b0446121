"""Dense search with FAISS: exact inner product (``flat``) or HNSW graphs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import IntegrityError, InvalidRequestError

FAISS_FILE = "faiss.index"
DEFAULT_PARAMETERS: dict[str, Any] = {"kind": "flat", "hnsw_m": 32, "ef_construction": 200, "ef_search": 128}

Scores = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

# Below this many queries FAISS scans a flat index one query at a time on one core (its BLAS path starts
# at 20 queries, ``faiss.cvar.distance_compute_blas_threshold``); the scan is memory-bound, and a BLAS
# matrix-vector product over the same vectors reads them on every core: 1.7-2x faster on two cores here.
SMALL_BATCH = 20


def _faiss() -> Any:
    # Imported lazily; typed loosely since faiss's SWIG signatures are not what its stubs say.
    import faiss

    return faiss


class FaissIndex:
    def __init__(self, index: Any, parameters: Mapping[str, Any]) -> None:
        self.index = index
        self.parameters = dict(parameters)
        self._hnsw = self.parameters["kind"] == "hnsw"

    @staticmethod
    def parameters_of(given: Mapping[str, Any] | None) -> dict[str, Any]:
        params = {**DEFAULT_PARAMETERS, **(given or {})}
        if params["kind"] not in ("flat", "hnsw"):
            raise InvalidRequestError(f"faiss kind must be 'flat' or 'hnsw', not {params['kind']!r}")
        return params

    @classmethod
    def build(cls, vectors: npt.NDArray[np.float32], parameters: Mapping[str, Any] | None) -> FaissIndex:
        faiss = _faiss()
        params = cls.parameters_of(parameters)
        dim = vectors.shape[1]
        if params["kind"] == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, int(params["hnsw_m"]), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(params["ef_construction"])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, params)

    def save(self, folder: Path) -> list[str]:
        """Only HNSW graphs are saved; a flat index is rebuilt from the vectors (the same bytes)."""
        faiss = _faiss()
        if self.parameters["kind"] == "flat":
            return []
        faiss.write_index(self.index, str(folder / FAISS_FILE))
        return [FAISS_FILE]

    @classmethod
    def load(
        cls, folder: Path, vectors: npt.NDArray[np.float32], parameters: Mapping[str, Any] | None
    ) -> FaissIndex:
        faiss = _faiss()
        params = cls.parameters_of(parameters)
        if params["kind"] == "flat":
            return cls.build(vectors, params)
        try:
            index = faiss.read_index(str(folder / FAISS_FILE))
        except RuntimeError as exc:
            raise IntegrityError(f"cannot read FAISS index in {folder}: {exc}") from exc
        if index.ntotal != len(vectors):
            raise IntegrityError(f"FAISS index holds {index.ntotal} vectors, the chunk table {len(vectors)}")
        return cls(index, params)

    def search(
        self, queries: npt.NDArray[np.float32], k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> tuple[Scores, Ids]:
        """Top ``k`` rows per query (id -1 where fewer exist)."""
        k = max(1, min(k, self.index.ntotal))
        if queries.dtype != np.float32 or not queries.flags.c_contiguous:
            queries = np.ascontiguousarray(queries, dtype=np.float32)
        hnsw = self._hnsw
        if allowed is None:
            if not hnsw and len(queries) < SMALL_BATCH:
                return self._scan(queries, k)
            if hnsw:
                self.index.hnsw.efSearch = max(int(self.parameters["ef_search"]), k)
            scores, ids = self.index.search(queries, k)
            return scores, ids
        faiss = _faiss()
        rows = np.flatnonzero(allowed).astype(np.int64)
        if rows.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        selector = faiss.IDSelectorBatch(rows)
        if hnsw:
            params: Any = faiss.SearchParametersHNSW(
                sel=selector, efSearch=max(int(self.parameters["ef_search"]), k)
            )
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def _scan(self, queries: npt.NDArray[np.float32], k: int) -> tuple[Scores, Ids]:
        """Exact top ``k`` of a flat index by a BLAS product over FAISS's own vector storage (a view,
        not a copy); the same hits as ``index.search``, equal scores by the higher id first, as FAISS
        orders them."""
        index = self.index
        faiss = _faiss()
        stored = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
        products = queries @ stored.T  # (queries, rows)
        count = len(queries)
        scores = np.empty((count, k), np.float32)
        ids = np.empty((count, k), np.int64)
        for row in range(count):
            row_scores = products[row]
            top = np.argpartition(row_scores, -k)[-k:] if k < len(row_scores) else np.arange(len(row_scores))
            order = np.lexsort((-top, -row_scores[top]))
            ids[row] = top[order]
            scores[row] = row_scores[ids[row]]
        return scores, ids
