"""`aihub eval dataset push`: evaluation datasets (BEIR folders, QA sets) as hub artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aihub.cli_errors import clean_errors
from aihub.eval_cli import eval_app
from aihub.eval_gateway import eval_settings, eval_store

dataset_app = typer.Typer(
    help="Evaluation datasets in the hub (BEIR folders, QA sets).", no_args_is_help=True
)
eval_app.add_typer(dataset_app, name="dataset")


@dataset_app.command("push")
@clean_errors
def dataset_push(
    folder: Annotated[
        Path,
        typer.Argument(help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or a QA set (qa.jsonl)."),
    ],
    name: Annotated[str, typer.Option(help="Hub name, e.g. datasets/scifact.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t")] = None,
    description: Annotated[str | None, typer.Option(help="A line about the dataset.")] = None,
    config: Annotated[Path | None, typer.Option(help="aihub config (home).")] = None,
) -> None:
    """Push an evaluation dataset as a hub artifact; prints its digest."""
    from evals.datasets import push_dataset

    artifact = push_dataset(eval_store(eval_settings(config)), folder, name, tag or ("latest",), description)
    typer.echo(artifact.digest)
