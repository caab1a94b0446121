"""`aihub bench eval`: evaluation throughput against the gateway's own, at the same concurrency."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aihub.cli_errors import clean_errors
from bench.cli import bench_app


@bench_app.command("eval")
@clean_errors
def bench_command(
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 8,
    items: Annotated[int, typer.Option(min=10, help="Questions per round.")] = 200,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of each; the best counts.")] = 2,
    json_out: Annotated[Path | None, typer.Option(help="Write the figures as JSON here.")] = None,
) -> None:
    """Evaluation throughput vs the gateway's own request throughput (fixed-latency engine double)."""
    import tempfile

    from aihub.gateway_process import GatewayProcess
    from bench.eval_bench import measure
    from hub.store import LocalStore

    model_id = "fixed-latency-double"
    model = {
        "id": model_id,
        "engine": "fixed-latency",
        "options": {"ttft_s": 0.02, "itl_s": 0.005},
    }
    with tempfile.TemporaryDirectory(prefix="aihub-eval-bench-") as tmp:
        work = Path(tmp)
        config = {
            "app": {"home": str(work / "home"), "models": [model], "embedders": [], "prepare_defaults": False}
        }
        with GatewayProcess(config, work) as gateway:
            store = LocalStore(work / "eval-hub")
            result = asyncio.run(
                measure(
                    gateway.base_url,
                    model_id,
                    store,
                    work,
                    concurrency=concurrency,
                    items=items,
                    rounds=rounds,
                )
            )
    table = Table("concurrency", "items", "gateway req/s", "eval items/s", "ratio", title="eval throughput")
    table.add_row(
        str(result.concurrency),
        str(result.items),
        f"{result.gateway_rps:.1f}",
        f"{result.eval_rps:.1f}",
        f"{result.ratio:.3f}",
    )
    Console().print(table)
    if json_out is not None:
        json_out.write_text(json.dumps(result.as_dict(), indent=2))
