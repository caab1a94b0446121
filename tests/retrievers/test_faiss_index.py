"""A flat index answers a few queries by a BLAS scan of FAISS's own storage: the same hits as FAISS."""

from __future__ import annotations

import numpy as np
import pytest

from retrievers.faiss_index import SMALL_BATCH, FaissIndex


def unit_rows(rows: int, dimensions: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("queries", [1, 3, SMALL_BATCH - 1])
@pytest.mark.parametrize("k", [1, 10, 500])
def test_small_batches_find_what_faiss_finds(queries: int, k: int) -> None:
    corpus = unit_rows(300)
    index = FaissIndex.build(corpus, {"kind": "flat"})
    asked = unit_rows(queries, seed=1)
    scores, ids = index.search(asked, k)
    faiss_scores, faiss_ids = index.index.search(asked, min(k, 300))
    assert ids.shape == faiss_ids.shape == (queries, min(k, 300))
    np.testing.assert_allclose(scores, faiss_scores, rtol=0, atol=1e-5)
    # The same order, except among scores equal up to float rounding (BLAS sums in another order).
    near_tie = np.zeros_like(ids, dtype=bool)
    close = np.abs(np.diff(faiss_scores, axis=1)) < 1e-5
    near_tie[:, 1:] |= close
    near_tie[:, :-1] |= close
    assert np.array_equal(ids[~near_tie], faiss_ids[~near_tie])
    for row, faiss_row in zip(ids, faiss_ids, strict=True):
        assert set(row.tolist()) == set(faiss_row.tolist()) or k < 300


def test_ties_come_in_faiss_order_higher_id_first() -> None:
    corpus = np.tile(unit_rows(4), (3, 1))  # rows 1, 5 and 9 are the same vector: equal scores
    index = FaissIndex.build(corpus, {"kind": "flat"})
    scores, ids = index.search(corpus[5:6], 6)
    _, faiss_ids = index.index.search(corpus[5:6], 6)
    assert ids[0][:3].tolist() == [9, 5, 1]
    assert np.array_equal(ids, faiss_ids)
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)


def test_filters_and_large_batches_stay_with_faiss() -> None:
    corpus = unit_rows(200)
    index = FaissIndex.build(corpus, {"kind": "flat"})
    many = unit_rows(SMALL_BATCH + 5, seed=2)
    _, ids = index.search(many, 5)
    assert np.array_equal(ids, index.index.search(many, 5)[1])
    allowed = np.zeros(200, bool)
    allowed[[3, 50, 77]] = True
    _, filtered = index.search(many[:1], 5, allowed)
    assert set(filtered[0].tolist()) - {-1} <= {3, 50, 77}
