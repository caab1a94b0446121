"""nDCG@k, Recall@k and MRR@k as BEIR computes them (pytrec_eval / trec_eval conventions).

- A run is ``{query_id: {doc_id: score}}``; qrels are ``{query_id: {doc_id: relevance}}``.
- Ranking: score descending, ties broken by doc id descending (trec_eval's order).
- nDCG gain is the graded relevance, discount log2(rank + 1); the ideal ranking sorts all judged
  documents of the query by relevance. Recall counts documents with relevance >= 1.
- Averages are over the queries that have both judgments and a run entry (as pytrec_eval reports).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def ranked(scores: Mapping[str, float]) -> list[str]:
    by_id = sorted(scores, reverse=True)  # stable sort below keeps doc id descending among ties
    return sorted(by_id, key=lambda doc: -scores[doc])


def ndcg_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    dcg = sum(judged.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
    ideal = sorted((rel for rel in judged.values() if rel > 0), reverse=True)[:k]
    idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, rel in judged.items() if rel >= 1}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranking[:k], start=1):
        if judged.get(doc, 0) >= 1:
            return 1.0 / rank
    return 0.0


def per_query(
    run: Run, qrels: Qrels, *, ndcg_k: int = 10, recall_k: int = 100, mrr_k: int = 10
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for query_id, judged in qrels.items():
        if query_id not in run:
            continue
        ranking = ranked(run[query_id])
        out[query_id] = {
            f"ndcg@{ndcg_k}": ndcg_at(ranking, judged, ndcg_k),
            f"recall@{recall_k}": recall_at(ranking, judged, recall_k),
            f"mrr@{mrr_k}": mrr_at(ranking, judged, mrr_k),
        }
    return out


def evaluate(
    run: Run, qrels: Qrels, *, ndcg_k: int = 10, recall_k: int = 100, mrr_k: int = 10
) -> dict[str, float]:
    """Mean of each metric over the evaluated queries; ``queries`` is how many there were."""
    scores = per_query(run, qrels, ndcg_k=ndcg_k, recall_k=recall_k, mrr_k=mrr_k)
    names = (f"ndcg@{ndcg_k}", f"recall@{recall_k}", f"mrr@{mrr_k}")
    result = {
        name: (sum(s[name] for s in scores.values()) / len(scores) if scores else 0.0) for name in names
    }
    result["queries"] = float(len(scores))
    return result
