"""Short requests beside long prompts on the transformers engine: chunked prefill against whole prompts.

``aihub bench prefill`` (or ``python -m bench.prefill_bench``): for each prefill budget, the latency
of `max_tokens: 8` requests sent one after another, first on an idle engine, then while clients keep
long prompts coming; p50/p95 of both, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from serving.settings import ServingSettings
from serving.transformers_engine import TransformersEngine

LONG_TEXT = "The history of the alpine railway began with surveys of the passes. " * 110  # ~1500 tokens


def _request(n: int, content: str, max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        request_id=f"bench-{n}",
        params=SamplingParams(max_tokens=max_tokens, temperature=0.0),
        messages=(ChatMessage(role="user", content=content),),
    )


async def _latency(engine: TransformersEngine, n: int) -> float:
    started = time.perf_counter()
    async for _ in engine.generate(_request(n, f"Say hello number {n}.", 8)):
        pass
    return time.perf_counter() - started


async def _long_client(engine: TransformersEngine, stop: asyncio.Event, n: int) -> None:
    while not stop.is_set():
        async for _ in engine.generate(_request(n, LONG_TEXT, 16)):
            pass


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def measure(
    path: Path, budget: int | None, shorts: int, long_clients: int
) -> dict[str, tuple[float, float]]:
    settings = ServingSettings(max_batch_size=8, torch_threads=2, max_prefill_tokens_per_step=budget)
    engine = TransformersEngine("smollm2", path, settings)
    await engine.start()
    try:
        await _latency(engine, -1)  # warm-up
        idle = [await _latency(engine, n) for n in range(shorts)]
        stop = asyncio.Event()
        load = [asyncio.create_task(_long_client(engine, stop, 1000 + n)) for n in range(long_clients)]
        await asyncio.sleep(1.0)
        loaded = [await _latency(engine, n) for n in range(shorts)]
        stop.set()
        await asyncio.gather(*load)
    finally:
        await engine.aclose()
    return {"idle": _percentiles(idle), "load": _percentiles(loaded)}


def run_prefill_bench(budgets: list[int | None], shorts: int, long_clients: int, console: Console) -> None:
    """Short-request latency idle and beside long prompts, per prefill budget, in one run (one table)."""
    from serving.gguf_convert import convert_gguf_to_safetensors, find_smollm2_gguf

    table = Table(title=f"max_tokens=8 requests, idle and beside {long_clients} ~1500-token prompts")
    for column in ("prefill tokens/step", "idle p50 s", "idle p95 s", "load p50 s", "load p95 s", "p95 ×"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        path = convert_gguf_to_safetensors(find_smollm2_gguf(), Path(tmp) / "model")
        for budget in budgets:
            console.print(f"budget {budget or 'whole prompts'}: measuring …")
            result = asyncio.run(measure(path, budget, shorts, long_clients))
            (i50, i95), (l50, l95) = result["idle"], result["load"]
            figures = (i50, i95, l50, l95)
            table.add_row(str(budget or "whole"), *(f"{x:.2f}" for x in figures), f"{l95 / i95:.1f}")
    console.print(table)


def parse_budgets(text: str) -> list[int | None]:
    return [None if raw.strip() == "none" else int(raw) for raw in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shorts", type=int, default=20)
    parser.add_argument("--long-clients", type=int, default=3)
    parser.add_argument("--budgets", default="none,64,32", help="prefill tokens/step; none: whole prompts")
    args = parser.parse_args()
    run_prefill_bench(parse_budgets(args.budgets), args.shorts, args.long_clients, Console())


if __name__ == "__main__":
    main()
