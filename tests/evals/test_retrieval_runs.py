"""Retrieval evaluations through the gateway's vector store search, against a real BM25 index."""

from pathlib import Path
from typing import Any

import orjson
import pytest

from evals.datasets import push_dataset
from evals.evaluate import EvalRequest, evaluate
from evals.retrieval_eval import load_beir, score_retriever
from evals.run import RESULTS_FILE
from tests.evals import eval_fixtures as F

DEPTH = 50  # chunks asked per query: the whole small corpus


def beir_hub(root: Path) -> tuple[Any, Path]:
    from hub.store import LocalStore

    store = LocalStore(root / "hub")
    folder = F.write_beir(root / "beir")
    push_dataset(store, folder, "datasets/machines")
    F.push_bm25_index(store, folder / "corpus.jsonl")
    return store, folder


def pytrec_scores(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """An independent scorer on the same ranking (MRR@10: recip_rank over the top 10)."""
    import pytrec_eval

    measures = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)

    def top10(docs: dict[str, float]) -> dict[str, float]:  # trec order: score desc, then doc id desc
        ordered = sorted(sorted(docs, reverse=True), key=lambda d: -docs[d])
        return {d: docs[d] for d in ordered[:10]}

    ranks = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: top10(d) for q, d in run.items()}
    )
    n = len(measures)
    return {
        "ndcg@10": sum(m["ndcg_cut_10"] for m in measures.values()) / n,
        "recall@100": sum(m["recall_100"] for m in measures.values()) / n,
        "mrr@10": sum(m["recip_rank"] for m in ranks.values()) / n,
    }


async def test_index_target_agrees_with_eval_retrieval_and_pytrec_eval(tmp_path: Path) -> None:
    store, folder = beir_hub(tmp_path)
    services = F.index_services(store)
    out = tmp_path / "run"
    async with F.in_process_client(services) as client:
        result = await evaluate(
            client,
            store,
            EvalRequest(target="indexes/machines", dataset="datasets/machines", out=out, search_depth=DEPTH),
        )
    metrics = result.report["metrics"]
    assert set(metrics) == {"ndcg@10", "recall@100", "mrr@10"}
    assert result.report["counts"]["ndcg@10"] == 8
    assert 0.3 < metrics["ndcg@10"] < 1.0  # the index finds something, not everything in order

    # `aihub eval retrieval`'s code path, in-process on the same pinned index
    retriever = services.indexes.open_sync(result.plan.target.pinned_ref)
    direct = score_retriever(retriever, load_beir(folder, "test")).metrics
    for name in metrics:
        assert round(metrics[name], 4) == round(direct[name], 4), name

    records = [orjson.loads(line) for line in (out / RESULTS_FILE).read_bytes().splitlines()]
    run = {r["id"]: {doc: score for doc, score in r["ranking"]} for r in records}
    independent = pytrec_scores(run, load_beir(folder, "test").qrels)
    for name in metrics:
        assert metrics[name] == pytest.approx(independent[name], abs=5e-5), name


async def test_retrieval_numbers_are_the_same_twice_and_at_a_mirror(tmp_path: Path) -> None:
    from hub.archive import export_archive, import_archive
    from hub.store import LocalStore

    store_a, _ = beir_hub(tmp_path / "a")
    store_b = LocalStore(tmp_path / "b" / "hub")
    for ref in ("indexes/machines:latest", "datasets/machines:latest"):
        export_archive(store_a, ref, tmp_path / "transfer.tar")
        import_archive(store_b, tmp_path / "transfer.tar")
    reports = []
    for index, store in enumerate((store_a, store_a, store_b)):
        async with F.in_process_client(F.index_services(store)) as client:
            request = EvalRequest(
                target="indexes/machines:latest",
                dataset="datasets/machines",
                out=tmp_path / f"run{index}",
                search_depth=DEPTH,
                plot=False,
            )
            reports.append((await evaluate(client, store, request)).report)
    assert reports[0]["metrics"] == reports[1]["metrics"] == reports[2]["metrics"]
    assert len({r["composition_digest"] for r in reports}) == 1
    assert len({r["target"]["digest"] for r in reports}) == 1
