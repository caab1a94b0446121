"""`aihub bench vllm` and `aihub bench ray-llm`: aihub beside vLLM's own server and Ray Serve LLM.

The same client, model (the hub's SmolLM2-135M), prompt and engine settings for everyone, in one run.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aihub.gateway_process import GatewayProcess
from bench.cli import bench_app
from bench.peers import MODEL, Contender, engine_choices, ray_serve_llm, vllm_api_server
from bench.side_by_side import Level, Result, as_json, measure, ratio, render
from serving.settings import VllmSettings

console = Console()

VLLM_SERVE = "vllm serve"
AIHUB_VLLM = "aihub, vLLM engine"
AIHUB_TRANSFORMERS = "aihub, transformers engine"
AIHUB_RAY = "aihub --ray, vLLM replica"
RAY_LLM = "Ray Serve LLM"


def _levels(text: str, requests: int) -> list[Level]:
    """``1,8,16``: each level runs ``requests`` requests a round, at least two per client."""
    return [Level(int(c), max(requests, 2 * int(c))) for c in text.split(",") if c.strip()]


def _model_folder(config: Path | None) -> tuple[Path, Path]:
    """The hub's default chat model (imported on first use) as a folder, and aihub's home."""
    from aihub.compose import open_store
    from aihub.default_models import ensure_default_models
    from core.app_settings import DEFAULT_CHAT_MODEL_REF
    from ray_cluster.config import load_config

    settings = load_config(config)
    store = open_store(settings)
    ensure_default_models(store, settings.app, console)
    return store.materialize(store.resolve(DEFAULT_CHAT_MODEL_REF).pinned_ref), settings.app.home


def _aihub_config(home: Path, engine: str, vllm: VllmSettings, ray: dict[str, Any] | None) -> dict[str, Any]:
    from core.app_settings import DEFAULT_CHAT_MODEL_REF

    config: dict[str, Any] = {
        "app": {
            "home": str(home),
            "models": [{"id": MODEL, "ref": DEFAULT_CHAT_MODEL_REF, "engine": engine}],
            "embedders": [],
            "prepare_defaults": False,
            "demo": False,
        },
        "serving": {"vllm": vllm.model_dump(mode="json")},
    }
    if ray is not None:
        config["ray"] = ray
    return config


@contextmanager
def _aihub(
    name: str, home: Path, work: Path, engine: str, vllm: VllmSettings, ray: dict[str, Any] | None = None
) -> Iterator[Contender]:
    serve_args = ("--ray",) if ray is not None else ()
    config = _aihub_config(home, engine, vllm, ray)
    with GatewayProcess(config, work, ready_timeout_s=900, serve_args=serve_args) as gateway:
        yield Contender(name, gateway.base_url)


def _targets(title: str, rows: list[tuple[str, float, str, bool]]) -> None:
    table = Table(title=title)
    for column in ("figure", "measured", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for figure, value, target, met in rows:
        table.add_row(figure, f"{value:.3f}", target, "yes" if met else "[red]no[/]")
    console.print(table)


def _write(json_out: Path | None, payload: dict[str, Any]) -> None:
    if json_out is not None:
        json_out.write_text(json.dumps(payload, indent=2))


@bench_app.command("vllm")
def vllm_bench(
    concurrency: Annotated[str, typer.Option(help="Comma-separated load levels.")] = "1,8,16",
    requests: Annotated[int, typer.Option(min=2, help="Requests per level, contender and round.")] = 4,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per level (the order rotates).")] = 4,
    max_tokens: Annotated[int, typer.Option(min=1, help="Completion tokens per request.")] = 128,
    transformers: Annotated[bool, typer.Option(help="Also aihub on its transformers engine.")] = True,
    config: Annotated[Path | None, typer.Option(help="aihub config (home, serving.vllm).")] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write the figures as JSON here.")] = None,
) -> None:
    """aihub on its vLLM engine vs `vllm serve` alone (and vs aihub's transformers engine), streamed."""
    from ray_cluster.config import load_config

    vllm = load_config(config).serving.vllm
    model_path, home = _model_folder(config)
    choices = engine_choices(vllm)
    console.print(f"engine settings for every server: {choices}, kv cache {vllm.kv_cache_gib} GiB")
    with tempfile.TemporaryDirectory(prefix="aihub-bench-vllm-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        contenders = [
            stack.enter_context(vllm_api_server(model_path, vllm, work)),
            stack.enter_context(_aihub(AIHUB_VLLM, home, work, "vllm", vllm)),
        ]
        if transformers:
            contenders.append(
                stack.enter_context(_aihub(AIHUB_TRANSFORMERS, home, work, "transformers", vllm))
            )
        console.print("servers up: " + ", ".join(f"{c.name} {c.base_url}" for c in contenders))
        results = asyncio.run(
            measure(
                contenders,
                _levels(concurrency, requests),
                max_tokens=max_tokens,
                rounds=rounds,
                console=console,
            )
        )
    render(f"streamed, max_tokens {max_tokens}, temperature 0, same client and model", results, console)
    rows = _vllm_targets(results, transformers)
    _targets("aihub's vLLM engine against vLLM's own server (same run)", rows)
    _write(json_out, {"engine": str(choices), "results": as_json(results), "targets": rows})


def _vllm_targets(results: dict[int, list[Result]], transformers: bool) -> list[tuple[str, float, str, bool]]:
    rows: list[tuple[str, float, str, bool]] = []
    if 1 in results:
        value = ratio(results, 1, AIHUB_VLLM, VLLM_SERVE, "ttft")
        rows.append(("TTFT p50, c=1: aihub / vllm serve", value, "<= 1.05", value <= 1.05))
    for level in (8, 16):
        if level in results:
            value = ratio(results, level, AIHUB_VLLM, VLLM_SERVE, "throughput")
            rows.append((f"out tok/s, c={level}: aihub / vllm serve", value, ">= 0.97", value >= 0.97))
    if transformers:
        for level in sorted(results):
            value = ratio(results, level, AIHUB_VLLM, AIHUB_TRANSFORMERS, "throughput")
            rows.append(
                (f"out tok/s, c={level}: vLLM / transformers engine", value, "> 1: vLLM default", value > 1)
            )
    return rows


@bench_app.command("ray-llm")
def ray_llm_bench(
    concurrency: Annotated[str, typer.Option(help="Comma-separated load levels.")] = "1,8",
    requests: Annotated[int, typer.Option(min=2, help="Requests per level, contender and round.")] = 8,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per level (the order rotates).")] = 2,
    max_tokens: Annotated[int, typer.Option(min=1, help="Completion tokens per request.")] = 128,
    ingress: Annotated[str, typer.Option(help="aihub's Ray ingress: serve or driver.")] = "serve",
    peer: Annotated[bool, typer.Option(help="Also run Ray Serve LLM (off: aihub's phase alone).")] = True,
    config: Annotated[Path | None, typer.Option(help="aihub config (home, serving.vllm).")] = None,
    json_out: Annotated[Path | None, typer.Option(help="Write the figures as JSON here.")] = None,
) -> None:
    """`aihub serve --ray` vs Ray Serve LLM over the same vLLM, each beside `vllm serve` alone.

    The two Ray applications run one after the other (each starts its own Ray); `vllm serve` runs
    throughout and is measured in turns with each, so both are compared with the same baseline.
    """
    from ray_cluster.config import load_config

    vllm = load_config(config).serving.vllm
    model_path, home = _model_folder(config)
    levels = _levels(concurrency, requests)
    ray = {"num_cpus": 4, "ingress": ingress, "models": {MODEL: {"num_cpus": 1.0}}}
    phases: dict[str, dict[int, list[Result]]] = {}
    with tempfile.TemporaryDirectory(prefix="aihub-bench-ray-llm-") as tmp:
        work = Path(tmp)
        with vllm_api_server(model_path, vllm, work) as plain:
            starts = [(AIHUB_RAY, lambda: _aihub(AIHUB_RAY, home, work, "vllm", vllm, ray))]
            if peer:
                starts.insert(0, (RAY_LLM, lambda: ray_serve_llm(model_path, vllm, work)))
            for name, start in starts:
                with start() as contender:
                    console.print(f"{contender.name} up at {contender.base_url}")
                    phases[name] = asyncio.run(
                        measure(
                            [plain, contender], levels, max_tokens=max_tokens, rounds=rounds, console=console
                        )
                    )
    rows: list[tuple[str, float, str, bool]] = []
    for name, results in phases.items():
        render(f"{name} beside vllm serve", results, console)
    for level in (lvl.concurrency for lvl in levels):
        rows.extend(_ray_rows(phases, level))
    _targets(f"Ray modes against the plain vLLM server (same run; aihub ingress: {ingress})", rows)
    _write(json_out, {"phases": {name: as_json(r) for name, r in phases.items()}, "targets": rows})


def _ray_rows(phases: dict[str, dict[int, list[Result]]], level: int) -> list[tuple[str, float, str, bool]]:
    target = level == 8  # the targets are set at concurrency 8
    ours = ratio(phases[AIHUB_RAY], level, AIHUB_RAY, VLLM_SERVE, "throughput")
    rows = [
        (
            f"out tok/s, c={level}: aihub --ray / vllm serve",
            ours,
            ">= 0.97" if target else "",
            not target or ours >= 0.97,
        ),
        (
            f"TTFT p50, c={level}: aihub --ray / vllm serve",
            ratio(phases[AIHUB_RAY], level, AIHUB_RAY, VLLM_SERVE, "ttft"),
            "",
            True,
        ),
    ]
    if RAY_LLM in phases:
        theirs = ratio(phases[RAY_LLM], level, RAY_LLM, VLLM_SERVE, "throughput")
        rows += [
            (f"out tok/s, c={level}: Ray Serve LLM / vllm serve", theirs, "", True),
            (
                f"out tok/s, c={level}: aihub --ray / Ray Serve LLM",
                ours / theirs,
                ">= 1.5" if target else "",
                not target or ours / theirs >= 1.5,
            ),
            (
                f"TTFT p50, c={level}: Ray Serve LLM / vllm serve",
                ratio(phases[RAY_LLM], level, RAY_LLM, VLLM_SERVE, "ttft"),
                "",
                True,
            ),
        ]
    return rows
