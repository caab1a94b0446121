import random

import pytest
import pytrec_eval

from core.retrieval import SearchHit
from evals.retrieval_eval import merge_to_documents
from evals.retrieval_metrics import evaluate, ranked


def random_case(seed: int):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        judged = rng.sample(docs, rng.randint(1, 6))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2]) for d in judged}
        if rng.random() < 0.9:  # some queries have no run: they are not averaged
            # coarse scores so that ties occur often
            run[f"q{q}"] = {d: float(rng.randint(0, 8)) for d in rng.sample(docs, rng.randint(5, 50))}
    return qrels, run


@pytest.mark.parametrize("seed", range(20))
def test_matches_pytrec_eval_including_ties(seed):
    qrels, run = random_case(seed)
    ours = evaluate(run, qrels, ndcg_k=10, recall_k=20, mrr_k=10)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.20", "recip_rank"})
    theirs = evaluator.evaluate(run)
    n = len(theirs)
    assert ours["queries"] == n
    assert ours["ndcg@10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in theirs.values()) / n, abs=1e-9)
    assert ours["recall@20"] == pytest.approx(sum(v["recall_20"] for v in theirs.values()) / n, abs=1e-9)


def test_mrr_at_10_matches_pytrec_eval_when_the_run_is_cut_at_10():
    qrels, run = random_case(99)
    cut = {q: {d: run[q][d] for d in ranked(run[q])[:10]} for q in run}
    ours = evaluate(cut, qrels)
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    assert ours["mrr@10"] == pytest.approx(
        sum(v["recip_rank"] for v in theirs.values()) / len(theirs), abs=1e-9
    )


def test_hand_computed_ndcg():
    qrels = {"q": {"a": 2, "b": 1, "c": 0}}
    run = {"q": {"x": 3.0, "b": 2.0, "a": 1.0}}
    # dcg = 1/log2(3) + 2/log2(4); idcg = 2/log2(2) + 1/log2(3)
    import math

    expected = (1 / math.log2(3) + 2 / 2) / (2 + 1 / math.log2(3))
    assert evaluate(run, qrels)["ndcg@10"] == pytest.approx(expected)
    assert evaluate(run, qrels)["mrr@10"] == pytest.approx(0.5)


def test_chunk_hits_merge_to_their_best_document_score():
    hits = [
        SearchHit("d1", "d1#0", "t", 0.5),
        SearchHit("d2", "d2#0", "t", 0.9),
        SearchHit("d1", "d1#1", "t", 0.95),
    ]
    assert merge_to_documents(hits) == {"d1": 0.95, "d2": 0.9}
    assert list(merge_to_documents(hits, depth=1)) == ["d1"]
