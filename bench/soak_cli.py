"""`aihub bench soak`: mixed traffic for a bounded count and time; exits 1 on a 5xx, a hang, a cut stream,
an unexpected answer, or RSS growth over the limit after the warm-up (``bench.soak``)."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from aihub.gateway_process import GatewayProcess
from bench.cli import bench_app
from bench.soak import SoakSpec, render, report, soak
from bench.soak_setup import ENGINES, PIPELINE, prepare_home, serve_config, served_model
from bench.soak_traffic import Target
from core.app_settings import DEFAULT_EMBEDDER

console = Console(width=None if sys.stdout.isatty() else 130)


def discover(base_url: str, model: str | None, embedding_model: str | None) -> Target:
    """The target's parts from ``/v1/models`` and ``/v1/vector_stores``; the given ones win."""
    ids = [entry["id"] for entry in httpx.get(f"{base_url}/v1/models", timeout=30).json()["data"]]
    plain = [i for i in ids if not i.startswith(("rag/", "agent/")) and i != DEFAULT_EMBEDDER]
    if model is None and not plain:
        raise typer.BadParameter(f"{base_url} serves no plain model; pass --model", param_hint="--model")
    pipeline = next((i for i in ids if i.startswith("rag/")), None)
    embedder = embedding_model or (DEFAULT_EMBEDDER if DEFAULT_EMBEDDER in ids else None)
    stores = httpx.get(f"{base_url}/v1/vector_stores", timeout=30)
    store = stores.json()["data"][0]["id"] if stores.status_code == 200 and stores.json()["data"] else None
    return Target(base_url, model or plain[0], pipeline, embedder, store)


@bench_app.command("soak")
def soak_bench(
    requests: Annotated[int, typer.Option(min=1, help="Requests after the warm-up (a bound).")] = 20000,
    duration: Annotated[float, typer.Option(min=1, help="Seconds at most, warm-up included.")] = 600.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    warmup: Annotated[
        int | None,
        typer.Option(min=0, help="Requests before the RSS baseline (default: 5%, 2 per worker at least)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="A request still running after this is a hang.")
    ] = 60.0,
    rss_interval: Annotated[float, typer.Option(min=1, help="Seconds between RSS samples.")] = 30.0,
    max_rss_growth: Annotated[
        float, typer.Option(min=0, help="RSS growth limit after the warm-up, %.")
    ] = 5.0,
    url: Annotated[str | None, typer.Option(help="A running gateway to soak (else one is started).")] = None,
    pid: Annotated[int | None, typer.Option(help="With --url: the server's process id, for its RSS.")] = None,
    engine: Annotated[str, typer.Option(help="Started server: double, transformers, vllm, auto.")] = "double",
    home: Annotated[
        Path | None, typer.Option(help="Started server's aihub home (default: a temporary folder).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="With --url: the chat model (default: the first).")
    ] = None,
    embedding_model: Annotated[str | None, typer.Option(help="With --url: the embedding model.")] = None,
    max_request_bytes: Annotated[
        int, typer.Option(help="The server's request body limit (oversized bodies go over it).")
    ] = 2 * 1024 * 1024,
    out: Annotated[Path | None, typer.Option(help="Write the report as JSON here.")] = None,
) -> None:
    """Mixed traffic (chat, streams, cancelled streams, RAG, embeddings, search, oversized inputs) against
    one gateway: p50/p95 per kind, errors, and the server's RSS every --rss-interval seconds."""
    if engine not in ENGINES:
        raise typer.BadParameter(f"{engine!r}: choose one of {', '.join(ENGINES)}", param_hint="--engine")
    spec = SoakSpec(
        requests=requests,
        duration_s=duration,
        concurrency=concurrency,
        timeout_s=timeout,
        warmup=warmup if warmup is not None else max(2 * concurrency, requests // 20),
        rss_interval_s=rss_interval,
        max_rss_growth=max_rss_growth / 100,
    )
    with ExitStack() as stack:
        if url is not None:
            target = discover(url.rstrip("/"), model, embedding_model)
            title = f"soak of {url}"
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aihub-soak-")))
            config = serve_config(engine, home or work / "home")
            prepare_home(engine, config, work, console)
            console.print(f"starting aihub serve ({engine}) …")
            server = stack.enter_context(GatewayProcess(config, work, ready_timeout_s=600))
            url, pid = server.base_url, server.process.pid if server.process is not None else None
            target = Target(url, served_model(engine), PIPELINE, DEFAULT_EMBEDDER, "indexes/soak:latest")
            title = f"soak of aihub serve ({engine} engine)"
        target = Target(
            target.base_url,
            target.model,
            target.pipeline,
            target.embedding_model,
            target.vector_store,
            max_request_bytes=max_request_bytes,
        )
        console.print(f"kinds: {', '.join(target.kinds())}; model {target.model}")
        run = asyncio.run(soak(target, spec, pid, console))
    figures: dict[str, Any] = report(run, spec, target)
    render(figures, console, title)
    if out is not None:
        out.write_text(json.dumps(figures, indent=2))
    if not figures["passed"]:
        raise typer.Exit(1)
