"""SciFact (train split, read from ../shared/data/scifact): `aihub eval run` through the gateway's vector
store search agrees to 4 decimals with `aihub eval retrieval`'s code and with pytrec_eval."""

from pathlib import Path

import orjson
import pytest

from evals.datasets import push_dataset
from evals.evaluate import EvalRequest, evaluate
from evals.retrieval_eval import load_beir, score_retriever
from evals.run import RESULTS_FILE
from tests.evals import eval_fixtures as F

SCIFACT = Path(__file__).resolve().parents[3] / "shared" / "data" / "scifact"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCIFACT.is_dir(), reason="SciFact is not in ../shared/data"),
]


async def test_scifact_bm25_agrees_with_eval_retrieval_and_pytrec_eval(tmp_path: Path) -> None:
    import pytrec_eval

    from hub.store import LocalStore

    store = LocalStore(tmp_path / "hub")
    push_dataset(store, SCIFACT, "datasets/scifact")
    F.push_bm25_index(store, SCIFACT / "corpus.jsonl", "indexes/scifact-bm25")
    services = F.index_services(store)
    request = EvalRequest(
        target="indexes/scifact-bm25",
        dataset="datasets/scifact",
        split="train",
        out=tmp_path / "run",
        plot=False,
    )
    async with F.in_process_client(services) as client:
        result = await evaluate(client, store, request)
    metrics = result.report["metrics"]
    assert result.report["counts"]["ndcg@10"] == 809

    qrels = load_beir(SCIFACT, "train").qrels
    direct = score_retriever(
        services.indexes.open_sync(result.plan.target.pinned_ref), load_beir(SCIFACT, "train")
    )

    records = [orjson.loads(line) for line in (tmp_path / "run" / RESULTS_FILE).read_bytes().splitlines()]
    run = {r["id"]: {doc: score for doc, score in r["ranking"]} for r in records}
    measured = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)

    def top10(docs: dict[str, float]) -> dict[str, float]:
        ordered = sorted(sorted(docs, reverse=True), key=lambda d: -docs[d])
        return {d: docs[d] for d in ordered[:10]}

    ranks = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: top10(d) for q, d in run.items()}
    )
    n = len(measured)
    independent = {
        "ndcg@10": sum(m["ndcg_cut_10"] for m in measured.values()) / n,
        "recall@100": sum(m["recall_100"] for m in measured.values()) / n,
        "mrr@10": sum(m["recip_rank"] for m in ranks.values()) / n,
    }
    print("eval run", metrics, "eval retrieval", direct.metrics, "pytrec_eval", independent)
    for name in ("ndcg@10", "recall@100", "mrr@10"):
        assert round(metrics[name], 4) == round(direct.metrics[name], 4) == round(independent[name], 4), name
    assert metrics["ndcg@10"] > 0.6  # BM25 on SciFact: about 0.69 on this split
