"""`aihub eval`: quality of hub artifacts on public benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

eval_app = typer.Typer(help="Evaluate artifacts (retrieval quality).", no_args_is_help=True)
console = Console(stderr=True)


@eval_app.command()
def retrieval(
    index: Annotated[str, typer.Option(help="Index reference (pin a digest for reproducible numbers).")],
    dataset: Annotated[Path, typer.Option(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="qrels split.")] = "test",
    run_out: Annotated[Path | None, typer.Option(help="Write the run (top 100 per query) as JSON.")] = None,
    mode: Annotated[str | None, typer.Option(help="dense, bm25 or hybrid (default: the backend's).")] = None,
    config: Annotated[Path | None, typer.Option(help="aihub YAML config.")] = None,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of an index on a BEIR dataset, as BEIR computes them."""
    from rich.progress import Progress

    from aihub.compose import open_store
    from aihub.index_cli import open_retriever
    from evals.retrieval_eval import load_beir, score_retriever, write_run
    from ray_cluster.config import load_config

    settings = load_config(config)
    store = open_store(settings)
    retriever = open_retriever(index, settings, store)
    data = load_beir(dataset, split)
    with Progress(console=console) as progress:
        task = progress.add_task(f"{len(data.queries)} queries", total=len(data.queries))
        scores = score_retriever(
            retriever,
            data,
            mode=mode,  # type: ignore[arg-type]
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if run_out is not None:
        write_run(scores.run, run_out)
    table = Table(title=f"{index} ({retriever.info.digest[:19]}) on {dataset.name}/{split}")
    for column in ("mode", "queries", "nDCG@10", "Recall@100", "MRR@10", "seconds"):
        table.add_column(column)
    m = scores.metrics
    table.add_row(
        mode or retriever.info.backend,
        str(int(m["queries"])),
        f"{m['ndcg@10']:.4f}",
        f"{m['recall@100']:.4f}",
        f"{m['mrr@10']:.4f}",
        f"{scores.seconds:.1f}",
    )
    Console().print(table)
