"""`aihub bench` with no subcommand: closed-loop load on an engine directly and through the gateway
(a fixed-latency double and the real engine), side by side in one run."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.cli import bench_app, console
from bench.loadgen import LoadSpec
from bench.serving_bench import Comparison, compare
from core.engine import Engine

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
