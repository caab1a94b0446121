"""`aihub bench`: benchmarks that print their figures side by side with a baseline from the same run.

Mounted by ``aihub.cli`` through the ``aihub.commands`` entry point; the command modules below add to
``bench_app`` when imported.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bench.loadgen import LoadSpec
from bench.serving_bench import Comparison, compare
from core.engine import Engine

bench_app = typer.Typer(
    help="Benchmarks (serving by default; `retrieval`, `ingest`, `hub`).", invoke_without_command=True
)
console = Console()

DOUBLE_OPTIONS: dict[str, Any] = {"ttft_s": 0.02, "itl_s": 0.005, "tokens": 32}


async def _compare(
    engine: Engine,
    label: str,
    base_url: str,
    model_id: str,
    specs: list[LoadSpec],
    client: str,
    block: int,
) -> list[Comparison]:
    await engine.start()
    try:
        return await compare(label, engine, base_url, model_id, specs, client=client, block=block)
    finally:
        await engine.aclose()


def _levels(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@bench_app.callback()
def serving(
    ctx: typer.Context,
    engine: Annotated[str, typer.Option(help="double, real or both.")] = "both",
    concurrency: Annotated[str, typer.Option(help="Comma-separated load levels.")] = "1,4,16",
    real_concurrency: Annotated[str, typer.Option(help="Load levels for the real engine.")] = "1,4,8,16",
    requests_per_worker: Annotated[int, typer.Option(help="Requests per concurrent client (double).")] = 50,
    real_requests_per_worker: Annotated[int, typer.Option(help="Requests per client (real engine).")] = 2,
    max_tokens: Annotated[int, typer.Option(help="Completion tokens per request (real engine).")] = 32,
    config: Annotated[
        Path | None, typer.Option(help="aihub config (models, home) for the real engine.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write all figures as JSON here.")] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Ray Serve mode beside embedded mode (fixed-latency double).")
    ] = False,
    ray_requests: Annotated[int, typer.Option(help="Requests per mode and kind with --ray.", min=10)] = 200,
    client: Annotated[
        str, typer.Option(help="HTTP client: lean (bare HTTP/1.1, the default) or aiohttp.")
    ] = "lean",
    block: Annotated[
        int,
        typer.Option(
            min=1,
            help="Concurrency 1: direct and gateway take turns in closed-loop blocks of this many "
            "requests (1: strict turns).",
        ),
    ] = 10,
) -> None:
    """Closed-loop load on the engine directly and through the gateway, in one run."""
    if ctx.invoked_subcommand is not None:
        return
    if client not in ("lean", "aiohttp"):
        raise typer.BadParameter(f"{client!r}: choose lean or aiohttp", param_hint="--client")
    if ray:
        from bench.ray_bench_cli import run_ray_bench

        run_ray_bench(ray_requests, console, json_out, client=client)
        return
    from aihub.compose import build_engine, open_store
    from aihub.default_models import ensure_default_models
    from aihub.gateway_process import GatewayProcess
    from bench.serving_bench import render
    from core.app_settings import ModelConfig
    from ray_cluster.config import load_config

    settings = load_config(config)
    results: list[Comparison] = []
    idle_rss = 0
    with tempfile.TemporaryDirectory(prefix="aihub-bench-") as tmp:
        work = Path(tmp)
        bare = {"app": {"home": str(work / "home"), "models": [], "embedders": [], "prepare_defaults": False}}
        with GatewayProcess(bare, work) as idle:
            idle_rss = idle.rss_bytes()
        plans: list[tuple[str, ModelConfig, list[int], int]] = []
        if engine in ("double", "both"):
            double = ModelConfig(id="fixed-latency-double", engine="fixed-latency", options=DOUBLE_OPTIONS)
            plans.append(("double", double, _levels(concurrency), int(DOUBLE_OPTIONS["tokens"])))
        if engine in ("real", "both"):
            plans.append(("real", settings.app.models[0], _levels(real_concurrency), max_tokens))
        per_worker = {"double": requests_per_worker, "real": real_requests_per_worker}
        store = open_store(settings)
        for label, model, levels, tokens in plans:
            if label == "real":
                ensure_default_models(store, settings.app, console)
            gateway_config = {
                "app": {
                    "home": str(settings.app.home if label == "real" else work / "home"),
                    "models": [model.model_dump(mode="json")],
                    "embedders": [],
                    "prepare_defaults": False,
                }
            }
            # Concurrency 1 is paired request by request and gives the overhead figures: more samples.
            specs = [
                LoadSpec(
                    concurrency=c,
                    requests=c * per_worker[label] * (6 if label == "double" and c == 1 else 1),
                    max_tokens=tokens,
                )
                for c in levels
            ]
            if label == "double":  # non-streamed requests show the gateway's per-request overhead
                specs.insert(
                    1,
                    LoadSpec(
                        concurrency=1, requests=requests_per_worker * 6, max_tokens=tokens, stream=False
                    ),
                )
            direct_engine = build_engine(model, settings, store)
            with GatewayProcess(gateway_config, work) as gateway:
                console.print(f"[bold]{label}[/] engine: gateway at {gateway.base_url}")
                results.extend(
                    asyncio.run(
                        _compare(direct_engine, label, gateway.base_url, model.id, specs, client, block)
                    )
                )
    render(results, console)
    console.print(
        f"HTTP client: {client}; concurrency 1: direct and gateway alternate in closed-loop blocks of "
        f"{block} request(s)"
    )
    console.print(f"idle gateway RSS without models: [bold]{idle_rss / 2**20:.1f} MB[/]")
    real_levels = {r.spec.concurrency: r.gateway.output_throughput for r in results if r.label == "real"}
    if 1 in real_levels and 8 in real_levels:
        console.print(
            f"real engine aggregate output tok/s, concurrency 8 / 1 (gateway): "
            f"[bold]{real_levels[8] / real_levels[1]:.2f}x[/]"
        )
    if json_out:
        json_out.write_text(
            json.dumps(
                {
                    "idle_rss_mb": idle_rss / 2**20,
                    "client": client,
                    "concurrency_1_block": block,
                    "runs": [
                        {
                            "engine": r.label,
                            "stream": r.spec.stream,
                            "concurrency": r.spec.concurrency,
                            "direct": r.direct.as_dict(),
                            "gateway": r.gateway.as_dict(),
                            "ratios": r.ratios(),
                            "overhead_ms": r.overhead_ms(),
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )


@bench_app.command()
def retrieval(
    dataset: Annotated[
        Path | None, typer.Option(help="BEIR folder (default: ../shared/data/scifact).")
    ] = None,
    index: Annotated[
        str | None,
        typer.Option(
            help="Reuse this hub index's corpus vectors (else the corpus is embedded once, cached)."
        ),
    ] = None,
    queries: Annotated[int, typer.Option(help="Queries to search with.", min=10)] = 300,
    config: Annotated[Path | None, typer.Option(help="aihub YAML config.")] = None,
) -> None:
    """Retriever in-process vs raw FAISS, HTTP vs raw FAISS, micro-batched vs offline embeddings."""
    from bench.retrieval_bench import run_retrieval_bench
    from bench.retrieval_bench_setup import retrieval_bench_setup
    from ray_cluster.config import load_config

    setup = retrieval_bench_setup(load_config(config), dataset, index=index, queries=queries)
    run_retrieval_bench(dataset=dataset, console=console, setup=setup)


@bench_app.command()
def ingest(
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl to embed.")] = Path(
        "../shared/data/scifact/corpus.jsonl"
    ),
    sample: Annotated[int, typer.Option(min=8, help="Texts for the side-by-side runs.")] = 1024,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds (rotating order); the best time counts.")] = 1,
    whole_corpus: Annotated[
        bool, typer.Option(help="Also embed and index the whole corpus (FAISS, hybrid), timed.")
    ] = True,
    json_out: Annotated[Path | None, typer.Option(help="Write all figures as JSON here.")] = None,
    config: Annotated[Path | None, typer.Option(help="aihub YAML config (retrievers settings).")] = None,
) -> None:
    """Bulk embedding tokens/s: sentence-transformers fp32 and bf16 vs aihub's ingestion, same texts."""
    from bench.ingest_bench import run_ingest_bench
    from ray_cluster.config import load_config

    run_ingest_bench(corpus, sample, rounds, whole_corpus, load_config(config), console, json_out)


@bench_app.command()
def files(
    corpus: Annotated[
        Path, typer.Option(help="BEIR corpus.jsonl: its first records become the files.")
    ] = Path("../shared/data/scifact/corpus.jsonl"),
    count: Annotated[int, typer.Option(min=1, help="Files to upload into one vector store.")] = 200,
    rounds: Annotated[int, typer.Option(min=1, help="Interleaved rounds; the best of each side counts.")] = 3,
    json_out: Annotated[Path | None, typer.Option(help="Write the figures as JSON here.")] = None,
) -> None:
    """Files uploaded into a vector store over the API vs `aihub index build` on the same files."""
    from bench.files_bench import run_files_bench

    figures = run_files_bench(corpus, count, console, rounds=rounds)
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=2))


@bench_app.command()
def hub(
    folder: Annotated[
        Path | None, typer.Option(help="Model folder to push/pull (default: 500 MB random).")
    ] = None,
) -> None:
    """Tag resolution latency; push and pull throughput against sha256sum + cp."""
    from bench.hub_bench import run_hub_bench

    run_hub_bench(model_folder=folder, console=console)


@bench_app.command()
def pipeline(
    index: Annotated[
        str, typer.Option(help="SciFact index (built once if missing).")
    ] = "indexes/scifact:latest",
    dataset: Annotated[Path, typer.Option(help="BEIR folder for queries.")] = Path("../shared/data/scifact"),
    requests: Annotated[int, typer.Option(help="Requests per measurement.")] = 100,
    config: Annotated[Path | None, typer.Option(help="aihub config (home).")] = None,
) -> None:
    """Resolve + embed + retrieve + render on top of a model call; tracing on vs off."""
    from bench.pipeline_bench import run_pipeline_bench
    from ray_cluster.config import load_config

    run_pipeline_bench(load_config(config), index, dataset, requests, console)


@bench_app.command()
def responses(
    dataset: Annotated[Path, typer.Option(help="BEIR folder (corpus and queries).")] = Path(
        "../shared/data/scifact"
    ),
    documents: Annotated[int, typer.Option(help="SciFact documents in the index (built once).")] = 1000,
    requests: Annotated[int, typer.Option(help="Requests of each kind.")] = 200,
    config: Annotated[Path | None, typer.Option(help="aihub config (home).")] = None,
) -> None:
    """/v1/responses with file_search vs the same rag/ pipeline call: both p50s and the difference."""
    from bench.responses_bench import run_responses_bench
    from ray_cluster.config import load_config

    run_responses_bench(load_config(config), dataset, documents, requests, console)


@bench_app.command()
def ledger(
    rows: Annotated[int, typer.Option(min=1000, help="Rows to record per backend.")] = 100_000,
    postgres_url: Annotated[
        list[str] | None, typer.Option(help="Also a PostgreSQL database (postgresql://…); repeatable.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
    queue_size: Annotated[int, typer.Option(min=1, help="The ledger's bounded queue.")] = 10_000,
    max_seconds: Annotated[float, typer.Option(min=1, help="Stop recording after this long.")] = 60.0,
) -> None:
    """Usage ledger rows/s into SQLite (and PostgreSQL), every row counted in the database."""
    from bench.ledger_bench import run_ledger_bench
    from tenancy.settings import LedgerSettings

    settings = LedgerSettings(batch_size=batch_size, queue_size=queue_size)
    run_ledger_bench(postgres_url or [], rows, settings, max_seconds, console)


@bench_app.command()
def limits(
    admits: Annotated[int, typer.Option(min=1000, help="Admits per case and backend.")] = 100_000,
    max_seconds: Annotated[float, typer.Option(min=1, help="Stop a case after this long.")] = 20.0,
    postgres_url: Annotated[
        list[str] | None, typer.Option(help="Also a PostgreSQL database (postgresql://…); repeatable.")
    ] = None,
) -> None:
    """Rate limiter cost per request: no limits, limits from a warm lease, a lease every 100."""
    from bench.limits_bench import run_limits_bench

    run_limits_bench(admits, max_seconds, postgres_url or [], console)


@bench_app.command()
def tenancy(
    requests: Annotated[int, typer.Option(min=50, help="Requests per leg and round.")] = 500,
    rounds: Annotated[int, typer.Option(min=2, help="Rounds; the order of the legs alternates.")] = 4,
    work_dir: Annotated[Path | None, typer.Option(help="Where the gateways keep their homes.")] = None,
    soak: Annotated[int, typer.Option(min=0, help="Then this many requests at c=8, RSS sampled.")] = 0,
) -> None:
    """The gateway with tenancy off and on (a database key with limits, the usage ledger), same run."""
    from bench.tenancy_bench import run_tenancy_bench

    work = work_dir or Path(tempfile.mkdtemp(prefix="aihub-bench-tenancy-"))
    run_tenancy_bench(work, requests, rounds, console, soak)


@bench_app.command()
def prefill(
    budgets: Annotated[str, typer.Option(help="Prefill tokens per step, comma-separated; none: whole.")] = (
        "none,64,32"
    ),
    shorts: Annotated[int, typer.Option(min=2, help="max_tokens=8 requests per leg.")] = 20,
    long_clients: Annotated[int, typer.Option(min=1, help="Clients sending long prompts meanwhile.")] = 3,
) -> None:
    """Transformers engine: short-request latency idle and beside long prompts, per prefill budget."""
    from bench.prefill_bench import parse_budgets, run_prefill_bench

    run_prefill_bench(parse_budgets(budgets), shorts, long_clients, console)


@bench_app.command("console")
def console_pages(
    artifacts: Annotated[int, typer.Option(min=10, help="Prompt artifacts in the hub.")] = 1000,
    runs: Annotated[int, typer.Option(min=3, help="Loads per page, each in a fresh browser context.")] = 10,
    work_dir: Annotated[Path | None, typer.Option(help="Where the hub is built.")] = None,
) -> None:
    """Web console page loads in Debian's chromium on a hub of many artifacts (target: ≤ 300 ms)."""
    from bench.console_bench import run_console_bench

    run_console_bench(artifacts, runs, console, work_dir)


def _mount_commands() -> None:
    from bench import (  # noqa: F401  (add `eval`, `vllm`, `ray-llm`, `upstream` and `soak`)
        eval_bench_cli,
        soak_cli,
        upstream_bench_cli,
        vllm_cli,
    )


_mount_commands()
