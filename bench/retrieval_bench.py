"""Retrieval benchmark: each figure beside its baseline, measured in the same run.

1. Search through the Retriever in-process vs raw FAISS on the same vectors (query embedding excluded
   from both: the retriever's embedder replays precomputed query vectors): with an exact scan, at equal
   recall@10, and with the scan an index gets by default (fp16 copies), with its recall@10 of exact.
2. Vector store search over HTTP (a real uvicorn gateway on 127.0.0.1) vs the same search in-process.
3. Embeddings: 16 concurrent single-text clients (micro-batched) vs offline batches of 32.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
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
    source: str = ""  # where the corpus vectors came from (a hub index, the cache, or just embedded)
    http_protocol: Any = "auto"  # uvicorn's `http=`: the protocol class `aihub serve` runs
    figures: dict[str, float] = field(default_factory=dict)
    # The same index opened as an index is served by default (a flat scan of fp16 copies); None: not run.
    default_retriever: Retriever | None = None


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


def _raw_index(setup: RetrievalBenchSetup) -> Any:
    import faiss

    index = faiss.IndexFlatIP(setup.corpus_vectors.shape[1])
    index.add(np.ascontiguousarray(setup.corpus_vectors, dtype=np.float32))
    return index


@dataclass
class SingleQueries:
    raw: list[float] = field(default_factory=list)  # seconds per query
    ours: list[float] = field(default_factory=list)
    default: list[float] = field(default_factory=list)  # the default scan, when measured
    raw_ids: list[list[str]] = field(default_factory=list)
    our_ids: list[list[str]] = field(default_factory=list)
    default_ids: list[list[str]] = field(default_factory=list)


async def _single_queries(setup: RetrievalBenchSetup, index: Any, rounds: int) -> SingleQueries:
    """One query at a time, raw FAISS and the retrievers interleaved query by query (rotating which
    goes first), so that load from elsewhere on the machine falls on all alike."""
    out = SingleQueries()
    row_ids = setup.row_ids
    vectors = [v[None, :] for v in np.ascontiguousarray(setup.query_vectors, dtype=np.float32)]
    sides: list[tuple[Retriever | None, list[float], list[list[str]]]] = [
        (None, out.raw, out.raw_ids),
        (setup.retriever, out.ours, out.our_ids),
    ]
    if setup.default_retriever is not None:
        sides.append((setup.default_retriever, out.default, out.default_ids))
    clock = time.perf_counter
    for n in range(rounds * len(setup.queries)):
        q = n % len(setup.queries)
        for retriever, times, ids_found in sides[n % len(sides) :] + sides[: n % len(sides)]:
            start = clock()
            if retriever is None:
                _, ids = index.search(vectors[q], TOP_K)
                found = [row_ids[i] for i in ids[0].tolist() if i >= 0]
            else:
                hits = await retriever.search(setup.queries[q], top_k=TOP_K, mode="dense")
                found = [h.doc_id for h in hits]
            times.append(clock() - start)
            if n < len(setup.queries):
                ids_found.append(found)
    return out


def _batched_qps(setup: RetrievalBenchSetup, index: Any, rounds: int) -> tuple[float, float]:
    """All queries in one call, both sides, interleaved round by round."""
    row_ids, vectors = setup.row_ids, np.ascontiguousarray(setup.query_vectors, dtype=np.float32)
    raw = ours = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        _, ids = index.search(vectors, TOP_K)
        [[row_ids[i] for i in row if i >= 0] for row in ids.tolist()]
        raw += time.perf_counter() - start
        start = time.perf_counter()
        hits = setup.retriever.search_batch(setup.queries, top_k=TOP_K, mode="dense")
        [[h.doc_id for h in row] for row in hits]
        ours += time.perf_counter() - start
    n = rounds * len(setup.queries)
    return n / ours, n / raw


def _recall(found: Sequence[Sequence[str]], truth: Sequence[Sequence[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / max(1, len(t)) for f, t in zip(found, truth, strict=True)]))


class _Server:
    def __init__(self, app: Any, http_protocol: Any = "auto") -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, http=http_protocol, log_level="warning", access_log=False
        )
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


def _http_latencies(setup: RetrievalBenchSetup, timeout_s: float = 120.0) -> list[float]:
    """The gateway in this process; the client (aiohttp, keep-alive) in its own, as a real one is."""
    body: dict[str, Any] = {"max_num_results": TOP_K, "ranking_options": {"ranker": "dense"}}
    bodies = [{**body, "query": q} for q in setup.queries]
    with _Server(setup.app, setup.http_protocol) as base_url:
        spec = {"url": f"{base_url}/v1/vector_stores/{setup.vector_store_id}/search", "bodies": bodies}
        done = subprocess.run(
            [sys.executable, "-m", "bench.search_http_client"],
            input=orjson.dumps({**spec, "warmup": 20}),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the HTTP client failed: {done.stderr.decode()[-2000:]}")
    latencies: list[float] = orjson.loads(done.stdout)
    return latencies


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


def measure(setup: RetrievalBenchSetup, rounds: int = 3) -> list[Row]:
    index = _raw_index(setup)
    asyncio.run(_single_queries(setup, index, 1))  # warm-up: caches, allocator, first-call paths
    single = asyncio.run(_single_queries(setup, index, rounds))
    recall = _recall(single.our_ids, single.raw_ids)
    raw_qps, ours_qps = len(single.raw) / sum(single.raw), len(single.ours) / sum(single.ours)
    batched_ours, batched_raw = _batched_qps(setup, index, rounds)
    raw_p50 = statistics.median(single.raw) * 1000
    in_process = statistics.median(single.ours) * 1000
    over_http = statistics.median(_http_latencies(setup)) * 1000
    # Warm both paths, then measure the same texts both ways.
    _offline_embeddings(setup.embedder, setup.texts[:32], 32)
    offline = _offline_embeddings(setup.embedder, setup.texts, 32)
    concurrent = asyncio.run(_concurrent_embeddings(setup.embedder, setup.texts, 16))
    default_rows = []
    if single.default:
        default_qps = len(single.default) / sum(single.default)
        default_recall = _recall(single.default_ids, single.raw_ids)
        setup.figures.update(default_qps=default_qps, default_recall_at_10=default_recall)
        default_rows.append(
            Row(
                "search q/s, one query per call, the default scan (fp16 copies)",
                f"raw FAISS (recall@10 {default_recall:.3f} of exact)",
                default_qps,
                raw_qps,
                "q/s",
                default_qps / raw_qps,
                ">= 0.9x",
                default_qps >= 0.9 * raw_qps,
            )
        )
    setup.figures.update(
        corpus_rows=float(len(setup.row_ids)),
        queries=float(len(setup.queries)),
        raw_qps=raw_qps,
        retriever_qps=ours_qps,
        raw_batched_qps=batched_raw,
        retriever_batched_qps=batched_ours,
        recall_at_10=recall,
        raw_p50_ms=raw_p50,
        inprocess_p50_ms=in_process,
        http_p50_ms=over_http,
        offline_texts_per_s=offline,
        concurrent_texts_per_s=concurrent,
    )
    baseline = f"raw FAISS (recall@10 {recall:.3f})"
    return [
        Row(
            "search q/s, one query per call, exact scan (like for like)",
            baseline,
            ours_qps,
            raw_qps,
            "q/s",
            ours_qps / raw_qps,
            ">= 0.9x",
            ours_qps >= 0.9 * raw_qps,
        ),
        *default_rows,
        Row(
            f"search q/s, {len(setup.queries)} queries per call",
            baseline,
            batched_ours,
            batched_raw,
            "q/s",
            batched_ours / batched_raw,
            "(info)",
            True,
        ),
        Row(
            "search p50, in-process retriever",
            "raw FAISS p50",
            in_process,
            raw_p50,
            "ms",
            in_process - raw_p50,
            "(info)",
            True,
        ),
        Row(
            "search p50 over HTTP (aiohttp client)",
            "raw FAISS p50",
            over_http,
            raw_p50,
            "ms",
            over_http - raw_p50,
            "<= +1 ms",
            over_http <= raw_p50 + 1.0,
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
    console = console or Console()
    console.print(
        f"corpus: {len(setup.row_ids)} chunks, {len(setup.queries)} queries, raw FAISS exact; {setup.source}"
    )
    rows = measure(setup)
    render(rows, console)
    return rows
