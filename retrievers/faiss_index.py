"""Dense search with FAISS: a full inner-product scan (``flat``) or HNSW graphs.

A flat index scans half-precision copies of the vectors by default (``scan: fp16``, FAISS's
``IndexScalarQuantizer``). A single query's scan is bound by memory bandwidth, so reading half the bytes
is about 1.6x faster on this machine. The scores differ from exact ones by about 1e-3 at most (fp16 keeps
11 significant bits of each unit-vector component). The artifact keeps the float32 vectors, and
``scan: fp32`` scans them exactly. An index recorded without ``scan`` was built before the option
existed and is scanned exactly, as it was then.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import IntegrityError, InvalidRequestError

FAISS_FILE = "faiss.index"
DEFAULT_PARAMETERS: dict[str, Any] = {
    "kind": "flat",
    "scan": "fp16",  # flat only: what a scan reads (HNSW keeps float32 vectors in its graph)
    "hnsw_m": 32,
    "ef_construction": 200,
    "ef_search": 128,
}
LEGACY_SCAN = "fp32"  # indices recorded before `scan` existed

Scores = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


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
        if params["scan"] not in ("fp16", "fp32"):
            raise InvalidRequestError(f"faiss scan must be 'fp16' or 'fp32', not {params['scan']!r}")
        if params["kind"] == "hnsw":
            params["scan"] = "fp32"  # the graph holds float32 vectors
        return params

    @classmethod
    def build(cls, vectors: npt.NDArray[np.float32], parameters: Mapping[str, Any] | None) -> FaissIndex:
        faiss = _faiss()
        params = cls.parameters_of(parameters)
        dim = vectors.shape[1]
        if params["kind"] == "flat" and params["scan"] == "fp16":
            index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        elif params["kind"] == "flat":
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
        params = cls.parameters_of({"scan": LEGACY_SCAN, **(parameters or {})})
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
