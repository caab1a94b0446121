import asyncio
import time

import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.engine import Engine
from core.errors import ContextLengthExceededError
from serving.fixed_latency_engine import FixedLatencyEngineDouble


def request(**params: object) -> GenerationRequest:
    return GenerationRequest(request_id="r", params=SamplingParams(**params), prompt="one two three")  # type: ignore[arg-type]


async def test_timing_text_and_usage() -> None:
    engine = FixedLatencyEngineDouble(ttft_s=0.05, itl_s=0.02, tokens=5)
    assert isinstance(engine, Engine)
    start = time.perf_counter()
    stamps: list[float] = []
    chunks = []
    async for chunk in engine.generate(request()):
        stamps.append(time.perf_counter() - start)
        chunks.append(chunk)
    assert "".join(c.text for c in chunks) == "tok0 tok1 tok2 tok3 tok4"
    assert stamps[0] >= 0.05
    assert stamps[-1] >= 0.05 + 4 * 0.02
    assert stamps[-1] < 1.0
    last = chunks[-1]
    assert (last.finish_reason, last.prompt_tokens, last.completion_tokens) == ("stop", 3, 5)
    assert all(c.finish_reason is None for c in chunks[:-1])


async def test_max_tokens_gives_length() -> None:
    engine = FixedLatencyEngineDouble(ttft_s=0, itl_s=0, tokens=10)
    chunks = [c async for c in engine.generate(request(max_tokens=3))]
    assert "".join(c.text for c in chunks) == "tok0 tok1 tok2"
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("length", 3)


async def test_stop_string_ends_the_stream() -> None:
    engine = FixedLatencyEngineDouble(ttft_s=0, itl_s=0, tokens=10)
    chunks = [c async for c in engine.generate(request(stop=(" tok3",)))]
    assert "".join(c.text for c in chunks) == "tok0 tok1 tok2"
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("stop", 4)


async def test_chat_prompt_tokens_and_context_limit() -> None:
    engine = FixedLatencyEngineDouble(ttft_s=0, itl_s=0, tokens=2, context_length=8)
    chat = GenerationRequest(
        request_id="c", params=SamplingParams(), messages=(ChatMessage(role="user", content="a b c"),)
    )
    chunks = [c async for c in engine.generate(chat)]
    assert chunks[-1].prompt_tokens == 4
    with pytest.raises(ContextLengthExceededError):
        await anext(engine.generate(request(max_tokens=6)))


async def test_cancellation_releases_the_generation() -> None:
    engine = FixedLatencyEngineDouble(ttft_s=0, itl_s=0.01, tokens=1000)
    stream = engine.generate(request())
    await anext(stream)
    assert engine.active == 1
    await stream.aclose()  # type: ignore[attr-defined]
    assert engine.active == 0
    task = asyncio.create_task(anext(engine.generate(request())))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.active == 0
