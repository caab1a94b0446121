"""Retrieval benchmark: each figure beside its baseline, measured in the same run.

1. Search through the Retriever in-process vs raw FAISS on the same vectors (query embedding excluded
   from both: the retriever's embedder replays precomputed query vectors), at equal recall@10.
2. Vector store search over HTTP (a real uvicorn gateway on 127.0.0.1) vs the same search in-process.
3. Embeddings: 16 concurrent single-text clients (micro-batched) vs offline batches of 32.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from core.embedder import Embedder
from core.errors import InvalidRequestError
from core.retrieval import Retriever

TOP_K = 10


@dataclass
class RetrievalBenchSetup:
    """Built by a composition root (``aihub.eval_cli.retrieval_bench_setup``)."""

    corpus_vectors: npt.NDArray[np.float32]  # what the retriever's exact FAISS index holds, in row order
    row_ids: list[str]  # doc id of each row
    queries: list[str]
    query_vectors: npt.NDArray[np.float32]
    retriever: Retriever  # exact FAISS over corpus_vectors; its embedder replays query_vectors
    embedder: Embedder  # the real embedder, for the embeddings comparison
    texts: list[str]  # texts to embed
    app: Any  # an ASGI gateway app that serves vector_store_id
    vector_store_id: str
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    name: str
    baseline: str
    ours: float
    raw: float
    unit: str
    ratio: float
    target: str
    ok: bool


def _raw_faiss(setup: RetrievalBenchSetup) -> tuple[float, list[list[str]]]:
    import faiss

    index = faiss.IndexFlatIP(setup.corpus_vectors.shape[1])
    index.add(setup.corpus_vectors)
    results: list[list[str]] = []
    start = time.perf_counter()
    for vector in setup.query_vectors:
        _, ids = index.search(vector[None, :], TOP_K)
        results.append([setup.row_ids[i] for i in ids[0] if i >= 0])
    return len(setup.queries) / (time.perf_counter() - start), results


async def _retriever_qps(setup: RetrievalBenchSetup) -> tuple[float, list[list[str]]]:
    results: list[list[str]] = []
    start = time.perf_counter()
    for query in setup.queries:
        hits = await setup.retriever.search(query, top_k=TOP_K, mode="dense")
        results.append([h.doc_id for h in hits])
    return len(setup.queries) / (time.perf_counter() - start), results


def _recall(found: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / max(1, len(t)) for f, t in zip(found, truth, strict=True)]))


async def _inprocess_latencies(setup: RetrievalBenchSetup) -> list[float]:
    out = []
    for query in setup.queries:
        start = time.perf_counter()
        await setup.retriever.search(query, top_k=TOP_K, mode="dense")
        out.append(time.perf_counter() - start)
    return out


class _Server:
    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the benchmark gateway did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _http_latencies(setup: RetrievalBenchSetup) -> list[float]:
    out = []
    with _Server(setup.app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        url = f"/v1/vector_stores/{setup.vector_store_id}/search"
        body: dict[str, Any] = {"max_num_results": TOP_K, "ranking_options": {"ranker": "dense"}}
        client.post(url, json={**body, "query": setup.queries[0]}).raise_for_status()  # warm-up
        for query in setup.queries:
            start = time.perf_counter()
            client.post(url, json={**body, "query": query}).raise_for_status()
            out.append(time.perf_counter() - start)
    return out


async def _concurrent_embeddings(embedder: Embedder, texts: Sequence[str], clients: int) -> float:
    per_client = [texts[i::clients] for i in range(clients)]

    async def client(own: Sequence[str]) -> None:
        for text in own:
            await embedder.embed([text])

    start = time.perf_counter()
    await asyncio.gather(*(client(own) for own in per_client))
    return len(texts) / (time.perf_counter() - start)


def _offline_embeddings(embedder: Embedder, texts: Sequence[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed_batch(list(texts[i : i + batch]))
    return len(texts) / (time.perf_counter() - start)


def measure(setup: RetrievalBenchSetup) -> list[Row]:
    raw_qps, truth = _raw_faiss(setup)
    ours_qps, found = asyncio.run(_retriever_qps(setup))
    recall = _recall(found, truth)
    in_process = statistics.median(asyncio.run(_inprocess_latencies(setup))) * 1000
    over_http = statistics.median(_http_latencies(setup)) * 1000
    # Warm both paths, then measure the same texts both ways.
    _offline_embeddings(setup.embedder, setup.texts[:32], 32)
    offline = _offline_embeddings(setup.embedder, setup.texts, 32)
    concurrent = asyncio.run(_concurrent_embeddings(setup.embedder, setup.texts, 16))
    setup.figures.update(
        raw_qps=raw_qps,
        retriever_qps=ours_qps,
        recall_at_10=recall,
        inprocess_p50_ms=in_process,
        http_p50_ms=over_http,
        offline_texts_per_s=offline,
        concurrent_texts_per_s=concurrent,
    )
    return [
        Row(
            "search q/s, in-process retriever",
            f"raw FAISS (recall@10 {recall:.3f})",
            ours_qps,
            raw_qps,
            "q/s",
            ours_qps / raw_qps,
            ">= 0.9x",
            ours_qps >= 0.9 * raw_qps,
        ),
        Row(
            "search p50 over HTTP",
            "in-process search",
            over_http,
            in_process,
            "ms",
            over_http - in_process,
            "<= +1 ms",
            over_http <= in_process + 1.0,
        ),
        Row(
            "embeddings, 16 concurrent clients",
            "offline batch 32",
            concurrent,
            offline,
            "texts/s",
            concurrent / offline,
            ">= 0.7x",
            concurrent >= 0.7 * offline,
        ),
    ]


def render(rows: Sequence[Row], console: Console) -> None:
    table = Table(title="retrieval benchmark (same run, side by side)")
    for column in ("measure", "ours", "baseline", "baseline value", "ratio / delta", "target", "ok"):
        table.add_column(column)
    for r in rows:
        delta = f"{r.ratio:+.2f} ms" if r.unit == "ms" else f"{r.ratio:.2f}x"
        table.add_row(
            r.name,
            f"{r.ours:.2f} {r.unit}",
            r.baseline,
            f"{r.raw:.2f} {r.unit}",
            delta,
            r.target,
            "[green]yes[/]" if r.ok else "[red]no[/]",
        )
    console.print(table)


def run_retrieval_bench(
    dataset: Path | None = None,
    console: Console | None = None,
    *,
    setup: RetrievalBenchSetup | None = None,
) -> list[Row]:
    """Measure and print; ``setup`` comes from the composition root (it builds index and gateway)."""
    if setup is None:
        raise InvalidRequestError(
            "run_retrieval_bench needs a setup: call aihub.eval_cli.retrieval_bench_setup(dataset) first"
        )
    rows = measure(setup)
    render(rows, console or Console())
    return rows
