"""`aihub bench responses`: what ``/v1/responses`` with ``file_search`` adds over the same ``rag/``
pipeline call.

Both calls retrieve the same number of chunks from the same hub index (real MiniLM embedding, real
hybrid index over the first SciFact documents) and generate with the same fixed-latency engine double,
in one ``aihub serve`` process. The requests alternate (rag, responses, responses with ``store: false``,
rag, …) over the same queries, one at a time, so that drift hits all alike. The target is measured on
the stored call (``store: true``, the default): its SQLite write is part of what it adds.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from aihub.compose import AihubConfig, open_store
from aihub.default_models import ensure_default_models
from aihub.gateway_process import GatewayProcess
from core.app_settings import DEFAULT_CHAT_MODEL, DEFAULT_CHAT_MODEL_REF, DEFAULT_EMBEDDER_REF
from core.errors import ArtifactNotFoundError
from hub.store import LocalStore

PIPELINE = "pipelines/bench-responses"
DOUBLE = {"ttft_s": 0.02, "itl_s": 0.005, "tokens": 16}
TEMPLATE = "{% for d in documents %}[{{ loop.index }}] {{ d.text }}\n{% endfor %}Question: {{ question }}"
TOP_K = 4
WARMUP = 10


def ensure_index(
    store: LocalStore, dataset: Path, documents: int, settings: AihubConfig, console: Console
) -> str:
    """A hybrid index of the first ``documents`` SciFact documents, built once per hub."""
    name = f"indexes/bench-responses-{documents}"
    try:
        return store.resolve(f"{name}:latest").pinned_ref
    except ArtifactNotFoundError:
        pass
    from aihub.index_cli import open_embedder
    from retrievers.chunking import Chunking
    from retrievers.documents import read_sources
    from retrievers.index_builder import BuildOptions
    from retrievers.index_publish import build_and_push_index

    console.print(f"building [cyan]{name}[/] from {dataset} once")
    embedder, embedder_artifact = open_embedder(store, DEFAULT_EMBEDDER_REF, settings)
    options = BuildOptions(
        backend="hybrid", chunking=Chunking(), parameters={}, embedder_ref=embedder_artifact.pinned_ref
    )
    docs = islice(read_sources([dataset / "corpus.jsonl"]), documents)
    return build_and_push_index(store, name, docs, options, embedder=embedder).pinned_ref


def _queries(dataset: Path, count: int) -> list[str]:
    lines = (dataset / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


def _timed(client: httpx.Client, path: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    reply = client.post(path, json=body)
    elapsed = time.perf_counter() - started
    reply.raise_for_status()
    return elapsed * 1000


def measure(
    base_url: str,
    index_ref: str,
    queries: list[str],
    requests: int,
    *,
    model: str = DEFAULT_CHAT_MODEL,
    rag_model: str = "rag/bench-responses",
    warmup: int = WARMUP,
) -> dict[str, list[float]]:
    """Alternating rag / responses / unstored responses calls; each call's end-to-end latency in ms."""

    def rag(query: str) -> dict[str, Any]:
        return {
            "model": rag_model,
            "messages": [{"role": "user", "content": query}],
            "max_tokens": DOUBLE["tokens"],
        }

    def responses(query: str, store: bool) -> dict[str, Any]:
        return {
            "model": model,
            "input": query,
            "max_output_tokens": DOUBLE["tokens"],
            "tools": [{"type": "file_search", "vector_store_ids": [index_ref], "max_num_results": TOP_K}],
            "store": store,
        }

    times: dict[str, list[float]] = {"rag": [], "responses": [], "responses_unstored": []}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for number in range(warmup + requests):
            query = queries[number % len(queries)]
            took = (
                _timed(client, "/v1/chat/completions", rag(query)),
                _timed(client, "/v1/responses", responses(query, True)),
                _timed(client, "/v1/responses", responses(query, False)),
            )
            if number >= warmup:
                for name, ms in zip(times, took, strict=True):
                    times[name].append(ms)
    return times


def run_responses_bench(
    settings: AihubConfig, dataset: Path, documents: int, requests: int, console: Console
) -> dict[str, float]:
    store = open_store(settings)
    ensure_default_models(store, settings.app, console)
    index_ref = ensure_index(store, dataset, documents, settings, console)
    prompt = store.push(
        "prompt", "prompts/bench-responses", {"template": TEMPLATE, "variables": ["question", "documents"]}
    )
    store.push(
        "pipeline",
        PIPELINE,
        {
            "model": DEFAULT_CHAT_MODEL_REF,
            "prompt": prompt.pinned_ref,
            "indices": [index_ref],
            "retrieval": {"top_k": TOP_K},  # the index's default mode, as file_search uses
        },
    )
    queries = _queries(dataset, requests)
    with tempfile.TemporaryDirectory(prefix="aihub-bench-responses-") as tmp:
        config = {
            "app": {
                "home": str(settings.app.home),
                "prepare_defaults": False,
                "demo": False,
                "models": [{"id": DEFAULT_CHAT_MODEL, "engine": "fixed-latency", "options": DOUBLE}],
            },
        }
        with GatewayProcess(config, Path(tmp)) as gateway:
            times = measure(gateway.base_url, index_ref, queries, requests)
    figures = {
        "rag_p50_ms": statistics.median(times["rag"]),
        "responses_p50_ms": statistics.median(times["responses"]),
        "responses_unstored_p50_ms": statistics.median(times["responses_unstored"]),
    }
    figures["added_p50_ms"] = figures["responses_p50_ms"] - figures["rag_p50_ms"]
    _render(figures, documents, requests, console)
    return figures


def _render(figures: dict[str, float], documents: int, requests: int, console: Console) -> None:
    table = Table(
        title=f"/v1/responses + file_search vs the same rag/ pipeline call ({requests} each, alternating; "
        f"fixed-latency double, MiniLM, hybrid index of {documents} SciFact documents, top {TOP_K})"
    )
    for column in ("call", "e2el_ms p50"):
        table.add_column(column, justify="right")
    table.add_row("POST /v1/chat/completions rag/", f"{figures['rag_p50_ms']:.2f}")
    table.add_row("POST /v1/responses file_search", f"{figures['responses_p50_ms']:.2f}")
    table.add_row("… with store: false", f"{figures['responses_unstored_p50_ms']:.2f}")
    console.print(table)
    verdict = "met" if figures["added_p50_ms"] <= 5.0 else "NOT met"
    console.print(
        f"file_search adds p50 [bold]{figures['added_p50_ms']:.2f} ms[/] over the rag/ call "
        f"(target <= 5 ms: {verdict})"
    )
