"""Per-query retrieval scores of search results, with the code ``aihub eval retrieval`` uses: hits merged
to documents by ``evals.retrieval_eval.merge_to_documents``, ranked and scored by
``evals.retrieval_metrics`` (trec_eval's order: score descending, ties by doc id descending)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.retrieval import SearchHit
from evals import retrieval_metrics
from evals.retrieval_eval import merge_to_documents

RRF_K = 60
SCORERS = {
    "ndcg": retrieval_metrics.ndcg_at,
    "recall": retrieval_metrics.recall_at,
    "mrr": retrieval_metrics.mrr_at,
}


def documents_of(
    hits: Sequence[tuple[str, float]], depth: int, exclude: str | None = None
) -> dict[str, float]:
    """(doc id, chunk score) in the order the index returned them → the top ``depth`` documents, each
    scored by its best chunk. ``exclude``: BEIR drops a document that is the query itself."""
    merged = merge_to_documents([SearchHit(doc_id=d, chunk_id="", text="", score=s) for d, s in hits], depth)
    return {doc: score for doc, score in merged.items() if doc != exclude}


def fuse_documents(rankings: Sequence[Mapping[str, float]], k: int = RRF_K) -> dict[str, float]:
    """Several indices' scores are not comparable: fuse their document ranks (reciprocal rank fusion)."""
    fused: dict[str, float] = {}
    for documents in rankings:
        for rank, doc_id in enumerate(retrieval_metrics.ranked(documents)):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank + 1)
    return fused


def retrieval_scores(
    documents: Mapping[str, float], judged: Mapping[str, int], metrics: Sequence[str]
) -> dict[str, float]:
    """``metrics`` named ``ndcg@10``, ``recall@100``, ``mrr@10``…"""
    ranking = retrieval_metrics.ranked(documents)
    scores = {}
    for metric in metrics:
        base, _, k = metric.partition("@")
        scores[metric] = float(SCORERS[base](ranking, judged, int(k)))
    return scores
