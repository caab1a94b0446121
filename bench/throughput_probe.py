"""Aggregate output tokens/s of the CPU engine at several concurrency levels (a measurement, not a test).

Usage: ``python -m bench.throughput_probe [--model-path DIR] [--concurrency 1 4 8] [--tokens 64]``.
Without ``--model-path`` the shipped SmolLM2 GGUF is converted into ``--work-dir`` first (once).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from serving.gguf_convert import convert_gguf_to_safetensors, find_smollm2_gguf
from serving.settings import ServingSettings
from serving.transformers_engine import TransformersEngine

PROMPTS = (
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms.",
    "Describe a busy market in the morning.",
    "Give advice to someone learning to cook.",
    "Tell me about the history of bicycles.",
    "Describe your favourite season and why.",
    "Write a letter to a friend about a trip to the mountains.",
    "Explain what a computer does, for a child.",
)


async def _one(engine: TransformersEngine, index: int, tokens: int) -> int:
    request = GenerationRequest(
        request_id=f"probe-{index}",
        # Sampling with a fixed seed, and no EOS-shortened answers skewing the count: a long max_tokens.
        params=SamplingParams(max_tokens=tokens, temperature=0.8, seed=index),
        messages=(ChatMessage(role="user", content=PROMPTS[index % len(PROMPTS)]),),
    )
    count = 0
    async for chunk in engine.generate(request):
        count = chunk.completion_tokens
    return count


async def measure(engine: TransformersEngine, concurrency: int, tokens: int, rounds: int) -> float:
    produced, started = 0, time.perf_counter()
    for _ in range(rounds):
        counts = await asyncio.gather(*(_one(engine, i, tokens) for i in range(concurrency)))
        produced += sum(counts)
    return produced / (time.perf_counter() - started)


async def _main(args: argparse.Namespace) -> None:
    path = args.model_path or convert_gguf_to_safetensors(find_smollm2_gguf(), args.work_dir)
    settings = ServingSettings(torch_threads=args.threads, max_batch_size=max(args.concurrency))
    engine = TransformersEngine("smollm2", path, settings)
    await engine.start()
    try:
        await measure(engine, 1, 8, 1)  # warm-up
        results = {c: await measure(engine, c, args.tokens, args.rounds) for c in args.concurrency}
    finally:
        await engine.aclose()
    base = results[min(results)]
    for concurrency, rate in results.items():
        print(f"concurrency {concurrency:>2}: {rate:7.1f} output tokens/s  ({rate / base:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", type=Path, default=None)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/aihub-smollm2"))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
