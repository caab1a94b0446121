import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from rich.console import Console

from bench.retrieval_bench import RetrievalBenchSetup, measure, render
from bench.retrieval_bench_setup import (
    BENCH_REF,
    PrecomputedQueryEmbedder,
    SingleIndexProvider,
    _cached_index,
)
from core.embedder import EmbedderInfo, EmbeddingInput, Embeddings
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from retrievers.index_retriever import open_index
from retrievers.settings import RetrieverSettings

DIM = 32


class HashEmbedderDouble:
    """Stands in for MiniLM (too slow to embed a corpus in a fast test): a fixed vector per text."""

    def __init__(self) -> None:
        self.embedded = 0

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(id="hash", dimensions=DIM, max_input_tokens=256, digest="sha256:" + "a" * 64)

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    async def embed(self, inputs: Sequence[EmbeddingInput]) -> Embeddings:
        return Embeddings(vectors=self.embed_batch([str(x) for x in inputs]), prompt_tokens=len(inputs))

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded += len(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    with path.open("w") as out:
        for i in range(300):
            out.write(
                json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": f"text of document {i}"}) + "\n"
            )
    return path


def test_corpus_vectors_are_cached_by_corpus_and_embedder(corpus: Path, tmp_path: Path) -> None:
    embedder = HashEmbedderDouble()
    folder, spec, source = _cached_index(corpus, embedder, tmp_path / "cache")
    assert "embedded" in source and embedder.embedded == 300
    again, spec_again, source_again = _cached_index(corpus, embedder, tmp_path / "cache")
    assert again == folder and spec_again == spec and "cached" in source_again
    assert embedder.embedded == 300  # nothing re-embedded
    with corpus.open("a") as out:  # another corpus: another key, embedded afresh
        out.write(json.dumps({"_id": "d300", "title": "", "text": "one more"}) + "\n")
    other, _, source_other = _cached_index(corpus, embedder, tmp_path / "cache")
    assert other != folder and "embedded" in source_other
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []


def test_benchmark_measures_all_rows_side_by_side(corpus: Path, tmp_path: Path) -> None:
    embedder = HashEmbedderDouble()
    folder, spec, source = _cached_index(corpus, embedder, tmp_path / "cache")
    queries = [f"query {i}" for i in range(40)]
    query_vectors = embedder.embed_batch(queries)
    replay = PrecomputedQueryEmbedder(embedder, dict(zip(queries, query_vectors, strict=True)))
    settings = RetrieverSettings(work_dir=tmp_path / "work")
    exact = {**spec, "parameters": {**spec["parameters"], "faiss": {"kind": "flat", "scan": "fp32"}}}
    retriever = open_index(
        folder, exact, ref=BENCH_REF, digest="sha256:" + "0" * 64, embedder=replay, settings=settings
    )
    fast = open_index(
        folder, spec, ref=BENCH_REF + "-fp16", digest="sha256:" + "1" * 64, embedder=replay, settings=settings
    )
    services = GatewayServices(
        embedders={"hash": embedder},
        default_embedder="hash",
        indexes=SingleIndexProvider(BENCH_REF, retriever),
    )
    setup = RetrievalBenchSetup(
        corpus_vectors=np.load(folder / "vectors.npy"),
        row_ids=[r.doc_id for r in retriever.table.rows],
        queries=queries,
        query_vectors=query_vectors,
        retriever=retriever,
        embedder=embedder,
        texts=[f"text {i}" for i in range(64)],
        app=create_app(GatewaySettings(), services),
        vector_store_id=BENCH_REF,
        source=source,
        default_retriever=fast,
    )
    assert spec["parameters"]["faiss"]["scan"] == "fp16"  # what the cached index was built with
    rows = measure(setup, rounds=1)
    assert setup.figures["recall_at_10"] == 1.0  # exact search on both sides finds the same documents
    assert 0.9 <= setup.figures["default_recall_at_10"] <= 1.0
    assert "fp16" in rows[1].name and rows[1].ratio == setup.figures["default_qps"] / setup.figures["raw_qps"]
    assert [r.target for r in rows].count("(info)") == 2
    assert all(r.ours > 0 and r.raw > 0 for r in rows)
    assert setup.figures["http_p50_ms"] > setup.figures["raw_p50_ms"]
    console = Console(record=True, width=200)
    render(rows, console)
    text = console.export_text()
    assert "one query per call" in text and "over HTTP" in text and "<= +1 ms" in text
