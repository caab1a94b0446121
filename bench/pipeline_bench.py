"""`aihub bench pipeline`: what a RAG pipeline adds over the same model call, and the cost of tracing.

The model is the fixed-latency engine double (so generation costs the same in both calls and only
resolve + embed + retrieve + render shows); embedding and retrieval are real (MiniLM, the SciFact index).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from aihub.compose import AihubConfig, open_store
from aihub.default_models import ensure_default_models
from aihub.gateway_process import GatewayProcess
from bench.loadgen import LoadReport, LoadSpec, closed_loop, http_runner, summarize
from core.app_settings import DEFAULT_CHAT_MODEL, DEFAULT_CHAT_MODEL_REF, DEFAULT_EMBEDDER_REF
from core.errors import ArtifactNotFoundError
from hub.store import LocalStore

PIPELINE = "pipelines/bench-scifact"
DOUBLE = {"ttft_s": 0.02, "itl_s": 0.005, "tokens": 16}
TEMPLATE = "{% for d in documents %}[{{ loop.index }}] {{ d.text }}\n{% endfor %}Question: {{ question }}"


class _OtlpSink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them: a collector's receiving end, on loopback."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def ensure_scifact_index(
    store: LocalStore, ref: str, dataset: Path, settings: AihubConfig, console: Console
) -> str:
    try:
        return store.resolve(ref).pinned_ref
    except ArtifactNotFoundError:
        pass
    from aihub.index_cli import open_embedder
    from retrievers.chunking import Chunking
    from retrievers.documents import read_sources
    from retrievers.index_builder import BuildOptions
    from retrievers.index_publish import build_and_push_index

    console.print(f"building [cyan]{ref}[/] from {dataset} once (dense embedding takes minutes on a CPU)")
    embedder, embedder_artifact = open_embedder(store, DEFAULT_EMBEDDER_REF, settings)
    options = BuildOptions(
        backend="hybrid", chunking=Chunking(), parameters={}, embedder_ref=embedder_artifact.pinned_ref
    )
    documents = read_sources([dataset / "corpus.jsonl"])
    name = ref.split(":", 1)[0]
    return build_and_push_index(store, name, documents, options, embedder=embedder).pinned_ref


def _queries(dataset: Path, count: int) -> tuple[str, ...]:
    lines = (dataset / "queries.jsonl").read_text().splitlines()
    return tuple(json.loads(line)["text"] for line in lines[:count])


async def _measure(base_url: str, model: str, spec: LoadSpec) -> LoadReport:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        warm = LoadSpec(
            concurrency=spec.concurrency,
            requests=8,
            max_tokens=spec.max_tokens,
            prompts=spec.prompts,
            stream=False,
        )
        await closed_loop(http_runner(session, base_url, model, warm), warm)
        return summarize(
            spec.concurrency, *await closed_loop(http_runner(session, base_url, model, spec), spec)
        )


def run_pipeline_bench(
    settings: AihubConfig, index_ref: str, dataset: Path, requests: int, console: Console
) -> dict[str, Any]:
    store = open_store(settings)
    ensure_default_models(store, settings.app, console)
    pinned_index = ensure_scifact_index(store, index_ref, dataset, settings, console)
    prompt = store.push(
        "prompt", "prompts/bench-scifact", {"template": TEMPLATE, "variables": ["question", "documents"]}
    )
    store.push(
        "pipeline",
        PIPELINE,
        {
            "model": DEFAULT_CHAT_MODEL_REF,
            "prompt": prompt.pinned_ref,
            "indices": [pinned_index],
            "retrieval": {"mode": "hybrid", "top_k": 4},
        },
    )
    queries = _queries(dataset, requests)
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}/v1/traces"
    figures: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="aihub-bench-pipeline-") as tmp:
            for tracing in ("none", "otlp"):
                config = {
                    "app": {
                        "home": str(settings.app.home),
                        "prepare_defaults": False,
                        "demo": False,
                        "models": [{"id": DEFAULT_CHAT_MODEL, "engine": "fixed-latency", "options": DOUBLE}],
                    },
                    "gateway": {"tracing": {"exporter": tracing, "otlp_endpoint": endpoint}},
                }
                with GatewayProcess(config, Path(tmp)) as gateway:
                    single = LoadSpec(
                        concurrency=1, requests=requests, max_tokens=16, prompts=queries, stream=False
                    )
                    loaded = LoadSpec(
                        concurrency=4, requests=requests, max_tokens=16, prompts=queries, stream=False
                    )
                    figures[tracing] = {
                        "model": asyncio.run(_measure(gateway.base_url, DEFAULT_CHAT_MODEL, single)),
                        "rag": asyncio.run(_measure(gateway.base_url, "rag/bench-scifact", single)),
                        "rag_c4": asyncio.run(_measure(gateway.base_url, "rag/bench-scifact", loaded)),
                    }
    finally:
        sink.shutdown()
    _render(figures, console)
    off, on = figures["none"], figures["otlp"]
    return {
        "pipeline_overhead_p50_ms": off["rag"].e2el_ms[0] - off["model"].e2el_ms[0],
        "pipeline_overhead_p99_ms": off["rag"].e2el_ms[1] - off["model"].e2el_ms[1],
        "tracing_throughput_ratio": on["rag_c4"].request_throughput / off["rag_c4"].request_throughput,
    }


def _render(figures: dict[str, dict[str, LoadReport]], console: Console) -> None:
    table = Table(
        title="RAG pipeline vs the same model call (fixed-latency double; real MiniLM + SciFact index)"
    )
    for column in ("tracing", "call", "conc", "req/s", "e2el_ms p50", "e2el_ms p99"):
        table.add_column(column, justify="right")
    for tracing, runs in figures.items():
        for call, report in runs.items():
            table.add_row(
                tracing,
                call,
                str(report.concurrency),
                f"{report.request_throughput:.1f}",
                f"{report.e2el_ms[0]:.2f}",
                f"{report.e2el_ms[1]:.2f}",
            )
    console.print(table)
    off, on = figures["none"], figures["otlp"]
    console.print(
        f"pipeline adds p50 [bold]{off['rag'].e2el_ms[0] - off['model'].e2el_ms[0]:.2f} ms[/] "
        f"(p99 {off['rag'].e2el_ms[1] - off['model'].e2el_ms[1]:.2f} ms) over the model call; "
        f"tracing on (OTLP, batch) / off throughput at concurrency 4: "
        f"[bold]{on['rag_c4'].request_throughput / off['rag_c4'].request_throughput:.3f}[/]"
    )
