"""Evaluation throughput against the gateway's own request throughput, at the same concurrency, in one run.

Both drive the same gateway over HTTP with the same chat requests: the load generator
(``bench.loadgen``, non-streamed) and ``aihub eval run``'s machinery on a plain model target. The ratio
shows what pinning, scoring and writing per-item results cost on top of the requests themselves.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.loadgen import LoadSpec, closed_loop, http_runner
from evals.client import AiohttpPoster, GatewayClient
from evals.datasets import push_dataset
from evals.evaluate import EvalRequest, evaluate
from evals.plan import EngineSettings
from hub.store import LocalStore

logger = logging.getLogger(__name__)

QUESTION = "Which EuroHPC supercomputer is hosted in Bologna?"


@dataclass(frozen=True)
class EvalBenchResult:
    concurrency: int
    items: int
    gateway_rps: float  # load generator, best of the rounds
    eval_rps: float  # evaluation items per second, best of the rounds

    @property
    def ratio(self) -> float:
        return self.eval_rps / self.gateway_rps if self.gateway_rps else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "concurrency": self.concurrency,
            "items": self.items,
            "gateway_rps": self.gateway_rps,
            "eval_rps": self.eval_rps,
            "ratio": self.ratio,
        }


def prepare_hub(store: LocalStore, work: Path, items: int) -> tuple[str, str]:
    """A model artifact standing for the served double, and a QA set of ``items`` questions."""
    weights = work / "weights.bin"
    weights.write_bytes(b"fixed-latency engine double: no weights")
    model = store.push(
        "model",
        "models/fixed-latency-double",
        {"files": ["weights.bin"], "context_length": 4096},
        files={"weights.bin": weights},
    )
    qa = work / "qa"
    qa.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"q{i}", "question": QUESTION, "answer": "Leonardo"} for i in range(items)]
    (qa / "qa.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    dataset = push_dataset(store, qa, "datasets/eval-bench")
    return model.pinned_ref, dataset.pinned_ref


async def measure(
    base_url: str,
    model_id: str,
    store: LocalStore,
    work: Path,
    *,
    concurrency: int = 8,
    items: int = 200,
    max_tokens: int = 16,
    rounds: int = 3,
) -> EvalBenchResult:
    import aiohttp

    target, dataset = prepare_hub(store, work, items)
    spec = LoadSpec(
        concurrency=concurrency, requests=items, max_tokens=max_tokens, prompt=QUESTION, stream=False
    )
    gateway_rps: list[float] = []
    eval_rps: list[float] = []
    # Both sides use aiohttp sessions of their own, so the comparison is of the work, not the clients.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as load_session,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as eval_session,
    ):
        warm = LoadSpec(
            concurrency=concurrency, requests=concurrency * 2, max_tokens=max_tokens, stream=False
        )
        await closed_loop(http_runner(load_session, base_url, model_id, warm), warm)
        client = GatewayClient(AiohttpPoster(eval_session, base_url))
        params = EngineSettings(max_tokens=max_tokens).request_params()
        await asyncio.gather(*(client.chat(model_id, QUESTION, params) for _ in range(concurrency * 2)))
        for round_index in range(rounds):
            timings, duration = await closed_loop(http_runner(load_session, base_url, model_id, spec), spec)
            gateway_rps.append(len(timings) / duration)
            request = EvalRequest(
                target=target,
                dataset=dataset,
                out=work / f"run-{round_index}",
                metrics="exact_match,f1",
                engine=EngineSettings(max_tokens=max_tokens),
                served_model=model_id,
                concurrency=concurrency,
                plot=False,
            )
            result = await evaluate(client, store, request)
            eval_rps.append(len(result.outcome.records) / result.outcome.duration_s)
    result_figures = EvalBenchResult(concurrency, items, max(gateway_rps), max(eval_rps))
    logger.info("eval bench: %s", result_figures.as_dict())
    return result_figures
