"""Lexical search with bm25s: Lucene's BM25 variant, English stopwords and Snowball stemming."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import IntegrityError

logger = logging.getLogger(__name__)

BM25_DIR = "bm25"
# Anserini's SciFact regression settings; Lucene's scoring and an English analyzer.
DEFAULT_PARAMETERS: dict[str, Any] = {
    "k1": 0.9,
    "b": 0.4,
    "method": "lucene",
    "stemmer": "english",
    "stopwords": "en",
}


def _stemmer(language: str | None) -> Any:
    if not language:
        return None
    try:
        import Stemmer
    except ImportError:  # PyStemmer is optional; BM25 still works, a little worse
        logger.warning("PyStemmer is not installed: BM25 without stemming")
        return None
    return Stemmer.Stemmer(language)


class Bm25Index:
    def __init__(self, model: Any, parameters: Mapping[str, Any]) -> None:
        self.model = model
        self.parameters = dict(parameters)
        self._stem = _stemmer(self.parameters.get("stemmer"))

    @staticmethod
    def parameters_of(given: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**DEFAULT_PARAMETERS, **(given or {})}

    def _tokens(self, texts: Sequence[str], *, ids: bool) -> Any:
        import bm25s

        return bm25s.tokenize(
            list(texts),
            stopwords=self.parameters.get("stopwords"),
            stemmer=self._stem,
            return_ids=ids,
            show_progress=False,
        )

    @classmethod
    def build(cls, texts: Sequence[str], parameters: Mapping[str, Any] | None) -> Bm25Index:
        import bm25s

        params = cls.parameters_of(parameters)
        model = bm25s.BM25(k1=float(params["k1"]), b=float(params["b"]), method=str(params["method"]))
        index = cls(model, params)
        model.index(index._tokens(texts, ids=True), show_progress=False)
        return index

    def save(self, folder: Path) -> list[str]:
        target = folder / BM25_DIR
        self.model.save(str(target))
        return sorted(p.relative_to(folder).as_posix() for p in target.rglob("*") if p.is_file())

    @classmethod
    def load(cls, folder: Path, parameters: Mapping[str, Any] | None) -> Bm25Index:
        import bm25s

        try:
            model = bm25s.BM25.load(str(folder / BM25_DIR))
        except (OSError, ValueError, KeyError) as exc:
            raise IntegrityError(f"cannot read BM25 index in {folder}: {exc}") from exc
        return cls(model, cls.parameters_of(parameters))

    @property
    def size(self) -> int:
        return int(self.model.scores["num_docs"])

    def search(
        self, queries: Sequence[str], k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top ``k`` (row, score) per query; rows with no query term (score 0) are left out."""
        k = max(1, min(k, self.size))
        mask = None if allowed is None else allowed.astype(np.float32)
        ids, scores = self.model.retrieve(
            self._tokens(queries, ids=False), k=k, show_progress=False, weight_mask=mask, n_threads=0
        )
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if s > 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]
