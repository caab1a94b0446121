"""`aihub eval run | compare | gate`: pinned evaluations, reports in the hub, the release gate.

Adds commands to ``aihub.eval_cli.eval_app`` (importing this module also adds ``dataset push``).
The gateway is reached over HTTP (``--url``) or, without it, in this process.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aihub import dataset_cli  # noqa: F401  (it adds `dataset push`)
from aihub.cli_errors import clean_errors, err
from aihub.eval_cli import eval_app
from aihub.eval_gateway import eval_settings, eval_store, gateway_client
from core.errors import InvalidRequestError

ConfigOpt = Annotated[Path | None, typer.Option(help="aihub config (home, models, embedders).")]
UrlOpt = Annotated[
    str | None, typer.Option(help="A running gateway's base URL; default: an embedded one in this process.")
]
ApiKeyOpt = Annotated[str | None, typer.Option(help="Bearer key for --url.", envvar="AIHUB_EVAL_API_KEY")]
ConcurrencyOpt = Annotated[int, typer.Option(min=1, help="Items evaluated at once.")]


async def _evaluate(settings: Any, request: Any, url: str | None, api_key: str | None) -> Any:
    from evals.evaluate import evaluate

    columns = (TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("items", total=None)

        def on_item(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        async with gateway_client(settings, url, api_key, request.concurrency) as client:
            return await evaluate(client, eval_store(settings), request, on_item)


def _default_out(target: str) -> Path:
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return Path("eval-runs") / f"{target.replace('/', '-').replace(':', '-').replace('@', '-')[:80]}-{stamp}"


def _print_metrics(report: dict[str, Any]) -> None:
    table = Table(
        "metric", "value", "n", title=f"{report['target']['name']}@{report['target']['digest'][:19]}"
    )
    for name, value in report["metrics"].items():
        table.add_row(name, f"{value:.4f}", str(report["counts"].get(name, "")))
    for kind, figures in (report.get("latency_ms") or {}).items():
        table.add_row(
            f"{kind} p50/p99 ms", f"{figures['p50']:.1f} / {figures['p99']:.1f}", str(figures["count"])
        )
    Console().print(table)


@eval_app.command("run")
@clean_errors
def run_command(
    target: Annotated[
        str, typer.Option(help="rag/NAME[:TAG|@DIGEST], agent/…, or a hub model/index reference.")
    ],
    dataset: Annotated[str, typer.Option(help="Hub reference of the dataset artifact.")],
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated, e.g. ndcg@10,recall@100,mrr@10,exact_match,f1.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="qrels split of a BEIR dataset (default: test).")] = None,
    concurrency: ConcurrencyOpt = 4,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for run.json, results.jsonl and the report (default: eval-runs/NAME-TIME)."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run in --out (same pinned plan).")
    ] = False,
    max_tokens: Annotated[int, typer.Option(min=1, help="Completion budget per answer.")] = 128,
    seed: Annotated[int, typer.Option(help="Sampling seed sent with every request.")] = 0,
    served_model: Annotated[str | None, typer.Option(help="Gateway id of a plain model target.")] = None,
    push: Annotated[bool, typer.Option(help="Push the report to the hub, attached to the target.")] = False,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag(s) for the pushed report.")
    ] = None,
    plot: Annotated[bool, typer.Option(help="Write report.png.")] = True,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Evaluate a pipeline, agent, model or index against a dataset, pinned to digests."""
    from evals.evaluate import EvalRequest
    from evals.plan import EngineSettings

    if out is None:
        if resume:
            raise InvalidRequestError("--resume needs the --out folder of the interrupted run", param="out")
        out = _default_out(target)
    settings = eval_settings(config)
    request = EvalRequest(
        target=target,
        dataset=dataset,
        out=out,
        split=split,
        metrics=metrics,
        engine=EngineSettings(temperature=0.0, max_tokens=max_tokens, seed=seed),
        served_model=served_model,
        concurrency=concurrency,
        resume=resume,
        plot=plot,
    )
    result = asyncio.run(_evaluate(settings, request, url, api_key))
    if push:
        from evals.hub_report import push_report

        artifact = push_report(eval_store(settings), out, tag or ())
        err.print(f"report pushed: {artifact.pinned_ref} (subject {result.plan.target.digest})")
    if as_json:
        typer.echo(json.dumps(result.report, indent=2, sort_keys=True))
    else:
        _print_metrics(result.report)
        err.print(f"report: {out / 'report.md'}")


@eval_app.command("compare")
@clean_errors
def compare_command(
    run_a: Annotated[Path, typer.Argument(help="Output folder (or report.json) of the baseline run.")],
    run_b: Annotated[Path, typer.Argument(help="Output folder (or report.json) of the other run.")],
    samples: Annotated[int, typer.Option(min=100, help="Bootstrap resamples.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    plot: Annotated[Path | None, typer.Option(help="Write a comparison PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Metric deltas B − A with per-query paired significance (bootstrap and sign test, seeded)."""
    from evals.compare import compare_runs

    comparison = compare_runs(run_a, run_b, samples, seed)
    if plot is not None:
        from evals.plot import plot_comparison

        plot_comparison(comparison.a, comparison.b, plot, (run_a.name or "A", run_b.name or "B"))
    if as_json:
        rows = [{**vars(d), "delta": d.delta} for d in comparison.deltas]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("metric", "A", "B", "Δ", "B wins/losses", "p (bootstrap)", "p (sign)")
    for d in comparison.deltas:
        p_boot = "-" if d.p_bootstrap is None else f"{d.p_bootstrap:.4f}"
        p_sign = "-" if d.p_sign is None else f"{d.p_sign:.4f}"
        table.add_row(
            d.metric, f"{d.a:.4f}", f"{d.b:.4f}", f"{d.delta:+.4f}", f"{d.wins}/{d.losses}", p_boot, p_sign
        )
    Console().print(table)


def _baseline(settings: Any, ref: str) -> dict[str, Any]:
    from evals.hub_report import hub_report
    from evals.report import read_report

    path = Path(ref)
    if path.exists():
        return read_report(path)
    return hub_report(eval_store(settings), ref)


@eval_app.command("gate")
@clean_errors
def gate_command(
    target: Annotated[str, typer.Option(help="The candidate: rag/NAME@DIGEST, a tag, or a hub reference.")],
    baseline: Annotated[
        str, typer.Option(help="Baseline report: a run folder, report.json or eval-report ref.")
    ],
    max_drop: Annotated[
        float, typer.Option(min=0.0, help="Largest allowed absolute drop of any metric.")
    ] = 0.01,
    candidate: Annotated[
        Path | None, typer.Option(help="An existing run of the candidate, instead of evaluating now.")
    ] = None,
    concurrency: ConcurrencyOpt = 4,
    url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the candidate's run (default: new).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate TARGET under the baseline's conditions; exit 1 if a metric drops by more than MAX_DROP."""
    from evals.evaluate import EvalRequest
    from evals.gate import gate, same_conditions
    from evals.plan import EngineSettings
    from evals.report import read_report
    from evals.retrieval_eval import CHUNK_DEPTH, RUN_DEPTH

    settings = eval_settings(config)
    base = _baseline(settings, baseline)
    if candidate is not None:
        from evals.plan import pin_target

        report = read_report(candidate)
        pinned = pin_target(eval_store(settings), target)
        if report["target"]["digest"] != pinned.digest:
            err.print(
                f"[red]error:[/] {candidate} measured {report['target']['digest']}, not {pinned.pinned_ref}"
            )
            raise typer.Exit(2)
    else:
        dataset = base["dataset"]
        request = EvalRequest(
            target=target,
            dataset=f"{dataset['name']}@{dataset['digest']}",
            out=out or _default_out(target),
            split=dataset.get("split"),
            metrics=",".join(base["metrics"]),
            engine=EngineSettings(**base["engine"]),
            concurrency=concurrency,
            search_limit=int(base.get("search_limit") or RUN_DEPTH),
            search_depth=int(base.get("search_depth") or CHUNK_DEPTH),
        )
        report = asyncio.run(_evaluate(settings, request, url, api_key)).report
    differences = same_conditions(base, report)
    if differences:
        err.print(f"[red]error:[/] the runs are not comparable: {', '.join(differences)} differ")
        raise typer.Exit(2)
    checks = gate(base, report, max_drop)
    table = Table("metric", "baseline", "candidate", "drop", "", title=f"gate (max drop {max_drop})")
    for check in checks:
        shown = "-" if check.candidate is None else f"{check.candidate:.4f}"
        table.add_row(
            check.metric,
            f"{check.baseline:.4f}",
            shown,
            f"{check.drop:+.4f}",
            "ok" if check.passed else "FAIL",
        )
    Console().print(table)
    failed = [c.metric for c in checks if not c.passed]
    if failed:
        err.print(f"[red]gate failed:[/] {', '.join(failed)} dropped by more than {max_drop}")
        raise typer.Exit(1)
    err.print("[green]gate passed[/]")
