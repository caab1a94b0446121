"""`aihub bench`: benchmarks that print their figures side by side with a baseline from the same run.

Mounted by ``aihub.cli`` through the ``aihub.commands`` entry point; the command modules below add to
``bench_app`` when imported.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

bench_app = typer.Typer(
    help="Benchmarks (serving by default; `retrieval`, `ingest`, `hub`).", invoke_without_command=True
)
console = Console()


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
    from bench import (  # noqa: F401  (add serving, `eval`, `vllm`, `ray-llm`, `upstream` and `soak`)
        eval_bench_cli,
        serving_cli,
        soak_cli,
        upstream_bench_cli,
        vllm_cli,
    )


_mount_commands()
