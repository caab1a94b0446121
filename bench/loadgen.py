"""Closed-loop load against an engine in-process or a gateway over HTTP, with vLLM's metric names."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from bench.lean_http import LeanHttpClient
from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.engine import Engine
from evals.report import percentile


@dataclass
class RequestTiming:
    start: float
    ttft: float = 0.0  # seconds from start to the first content
    e2el: float = 0.0
    token_times: list[float] = field(default_factory=list)  # arrival of each content piece
    output_tokens: int = 0


@dataclass(frozen=True)
class LoadSpec:
    concurrency: int
    requests: int  # total requests, bounded
    max_tokens: int
    prompt: str = "Write a short story about a lighthouse keeper."
    time_limit_s: float = 120.0
    stream: bool = True
    prompts: tuple[str, ...] = ()  # when given, requests cycle through these instead of `prompt`


RunOne = Callable[[], Awaitable[RequestTiming]]


async def closed_loop(run_one: RunOne, spec: LoadSpec) -> tuple[list[RequestTiming], float]:
    """``concurrency`` workers each issue the next request as soon as their last one finished."""
    remaining = spec.requests
    timings: list[RequestTiming] = []
    deadline = time.perf_counter() + spec.time_limit_s

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            timings.append(await run_one())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return timings, time.perf_counter() - started


def direct_runner(engine: Engine, spec: LoadSpec) -> RunOne:
    params = SamplingParams(max_tokens=spec.max_tokens, temperature=0.0)
    messages = (ChatMessage(role="user", content=spec.prompt),)

    async def run_one() -> RequestTiming:
        timing = RequestTiming(start=time.perf_counter())
        request = GenerationRequest(request_id=uuid.uuid4().hex, params=params, messages=messages)
        async for chunk in engine.generate(request):
            if chunk.text:
                timing.token_times.append(time.perf_counter())
            timing.output_tokens = chunk.completion_tokens
        _finish(timing)
        return timing

    return run_one


def http_runner(session: object, base_url: str, model: str, spec: LoadSpec) -> RunOne:
    """Chat completions through the gateway, streamed or not, timed as they arrive.

    ``session`` is a ``LeanHttpClient`` for ``base_url`` (a bare HTTP/1.1 reader, so the gateway's own
    cost shows) or an ``aiohttp.ClientSession``.
    """
    bodies = [_chat_body(model, text, spec) for text in (spec.prompts or (spec.prompt,))]
    sent = 0

    def next_body() -> bytes:
        nonlocal sent
        sent += 1
        return bodies[(sent - 1) % len(bodies)]

    if isinstance(session, LeanHttpClient):
        return _lean_runner(session, spec, next_body)
    return _aiohttp_runner(session, f"{base_url}/v1/chat/completions", spec, next_body)


def _record_event(timing: RequestTiming, line: bytes) -> None:
    """One SSE line: a content delta is a token arrival; the usage chunk gives the token count."""
    line = line.strip()
    if not line.startswith(b"data: ") or line == b"data: [DONE]":
        return
    event = orjson.loads(line[6:])
    choices = event.get("choices") or []
    if choices and choices[0].get("delta", {}).get("content"):
        timing.token_times.append(time.perf_counter())
    usage = event.get("usage")
    if usage:
        timing.output_tokens = usage["completion_tokens"]


def _record_answer(timing: RequestTiming, body: bytes) -> None:
    answer = orjson.loads(body)
    timing.token_times.append(time.perf_counter())
    timing.output_tokens = answer["usage"]["completion_tokens"]


def _lean_runner(client: LeanHttpClient, spec: LoadSpec, next_body: Callable[[], bytes]) -> RunOne:
    async def run_one() -> RequestTiming:
        body = next_body()
        timing = RequestTiming(start=time.perf_counter())
        async with client.post("/v1/chat/completions", body) as response:
            if response.status != 200:
                raise RuntimeError(f"gateway answered {response.status}: {(await response.read())!r}")
            if spec.stream:
                async for line in response.iter_lines():
                    _record_event(timing, line)
            else:
                _record_answer(timing, await response.read())
        _finish(timing)
        return timing

    return run_one


def _aiohttp_runner(session: object, url: str, spec: LoadSpec, next_body: Callable[[], bytes]) -> RunOne:
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    headers = {"content-type": "application/json"}

    async def run_one() -> RequestTiming:
        timing = RequestTiming(start=time.perf_counter())
        async with session.post(url, data=next_body(), headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"gateway answered {response.status}: {await response.text()}")
            if spec.stream:
                async for raw_line in response.content:
                    _record_event(timing, raw_line)
            else:
                _record_answer(timing, await response.read())
        _finish(timing)
        return timing

    return run_one


def _chat_body(model: str, text: str, spec: LoadSpec) -> bytes:
    payload: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": spec.max_tokens,
        "temperature": 0,
    }
    if spec.stream:
        payload |= {"stream": True, "stream_options": {"include_usage": True}}
    return orjson.dumps(payload)


def _finish(timing: RequestTiming) -> None:
    end = time.perf_counter()
    timing.e2el = end - timing.start
    timing.ttft = (timing.token_times[0] - timing.start) if timing.token_times else timing.e2el


@dataclass(frozen=True)
class LoadReport:
    """Figures named as vLLM's benchmark names them (milliseconds, per second)."""

    concurrency: int
    completed: int
    duration_s: float
    request_throughput: float
    output_throughput: float
    ttft_ms: tuple[float, float]  # (median, p99)
    tpot_ms: tuple[float, float]
    itl_ms: tuple[float, float]
    e2el_ms: tuple[float, float]

    def as_dict(self) -> dict[str, float | int]:
        flat: dict[str, float | int] = {
            "concurrency": self.concurrency,
            "completed": self.completed,
            "duration_s": self.duration_s,
            "request_throughput": self.request_throughput,
            "output_throughput": self.output_throughput,
        }
        for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
            median, p99 = getattr(self, name)
            flat[f"median_{name}"] = median
            flat[f"p99_{name}"] = p99
        return flat


def summarize(concurrency: int, timings: Sequence[RequestTiming], duration_s: float) -> LoadReport:
    def both(values: Sequence[float]) -> tuple[float, float]:
        return (percentile(values, 50) * 1000, percentile(values, 99) * 1000)

    tpots = [(t.e2el - t.ttft) / (t.output_tokens - 1) for t in timings if t.output_tokens > 1]
    itls = [b - a for t in timings for a, b in zip(t.token_times, t.token_times[1:], strict=False)]
    output_tokens = sum(t.output_tokens for t in timings)
    return LoadReport(
        concurrency=concurrency,
        completed=len(timings),
        duration_s=duration_s,
        request_throughput=len(timings) / duration_s if duration_s else 0.0,
        output_throughput=output_tokens / duration_s if duration_s else 0.0,
        ttft_ms=both([t.ttft for t in timings]),
        tpot_ms=both(tpots),
        itl_ms=both(itls),
        e2el_ms=both([t.e2el for t in timings]),
    )
