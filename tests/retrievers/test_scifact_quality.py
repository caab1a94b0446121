"""The full SciFact (train split) evaluation: builds the hybrid index once and scores all three modes."""

from pathlib import Path

import pytest

from evals.retrieval_eval import load_beir, score_retriever
from retrievers.documents import read_jsonl
from retrievers.index_builder import BuildOptions, build_index
from retrievers.index_retriever import open_index
from retrievers.minilm_embedder import MiniLMEmbedder
from retrievers.settings import RetrieverSettings

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scifact"
# Published test-split figures; the train split scores about 0.015 higher for both (measured:
# dense 0.660, BM25 0.695), so the band is 0.02 around the published numbers.
DENSE_REF, BM25_REF, BAND = 0.645, 0.679, 0.02


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.exists(), reason="needs ../shared/data/scifact")
def test_scifact_dense_bm25_hybrid(tmp_path, embedder: MiniLMEmbedder, settings: RetrieverSettings):
    built = build_index(
        read_jsonl(SCIFACT / "corpus.jsonl"),
        tmp_path / "idx",
        BuildOptions(backend="hybrid"),
        embedder=embedder,
    )
    assert built.spec["counts"] == {"documents": 5183, "chunks": 5183}
    retriever = open_index(
        built.folder,
        built.spec,
        ref="scifact",
        digest="sha256:" + "5" * 64,
        embedder=embedder,
        settings=settings,
    )
    data = load_beir(SCIFACT, "train")
    assert len(data.queries) == 809
    ndcg = {
        mode: score_retriever(retriever, data, mode=mode).metrics["ndcg@10"]
        for mode in ("dense", "bm25", "hybrid")
    }
    assert abs(ndcg["dense"] - DENSE_REF) <= BAND, ndcg
    assert abs(ndcg["bm25"] - BM25_REF) <= BAND, ndcg
    assert ndcg["hybrid"] > max(ndcg["dense"], ndcg["bm25"]) and ndcg["hybrid"] >= 0.70, ndcg
