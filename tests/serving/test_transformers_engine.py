"""The CPU engine on the real SmolLM2-135M-Instruct (converted from the shipped GGUF once per session)."""

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.chat import ChatMessage, GenerationChunk, GenerationRequest, SamplingParams
from core.engine import Engine
from core.errors import ContextLengthExceededError
from serving.settings import ServingSettings
from serving.transformers_engine import TransformersEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(smollm2_path: Path) -> Iterator[TransformersEngine]:
    # One torch thread: on a busy 2-core machine, two threads stall each other at every barrier.
    # The engine's thread delivers to whichever event loop calls generate, so one engine serves every test.
    served = TransformersEngine("smollm2", smollm2_path, ServingSettings(max_batch_size=8, torch_threads=1))
    asyncio.run(served.start())
    yield served
    asyncio.run(served.aclose())


def chat(text: str, **params: object) -> GenerationRequest:
    return GenerationRequest(
        request_id="r",
        params=SamplingParams(**params),  # type: ignore[arg-type]
        messages=(ChatMessage(role="user", content=text),),
    )


def completion(prompt: str, **params: object) -> GenerationRequest:
    return GenerationRequest(request_id="r", params=SamplingParams(**params), prompt=prompt)  # type: ignore[arg-type]


async def run(engine: TransformersEngine, request: GenerationRequest) -> tuple[str, list[GenerationChunk]]:
    chunks = [chunk async for chunk in engine.generate(request)]
    return "".join(chunk.text for chunk in chunks), chunks


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Polls: the scheduler thread updates its counters at step boundaries, with no event to await."""
    deadline = time.monotonic() + timeout_s
    for _ in itertools.count():
        if condition():
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def wait_until_idle(engine: TransformersEngine, timeout_s: float = 20.0) -> None:
    await wait_until(lambda: not (engine.stats.active or engine.stats.waiting), timeout_s)


async def test_greedy_chat_is_deterministic_and_reports_usage(engine: TransformersEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.info.context_length == 8192
    request = chat("What is the capital of France?", temperature=0, max_tokens=24)
    first, chunks = await run(engine, request)
    second, _ = await run(engine, request)
    assert first == second
    assert "Paris" in first
    last = chunks[-1]
    assert last.finish_reason in ("stop", "length")
    assert last.prompt_tokens > 10
    assert 1 <= last.completion_tokens <= 24
    assert all(chunk.finish_reason is None for chunk in chunks[:-1])


async def test_streamed_text_equals_the_whole_decoded_output(
    engine: TransformersEngine, smollm2_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = "Translate into French and German: the café is near the lake. Café:"
    text, chunks = await run(engine, completion(prompt, temperature=0, max_tokens=30))
    assert all("\ufffd" not in chunk.text for chunk in chunks)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=30, do_sample=False, attention_mask=torch.ones_like(ids))
    new_ids = out[0, ids.shape[1] :]
    reference = tokenizer.decode(new_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert text == reference
    assert chunks[-1].completion_tokens == len(new_ids)
    assert text.startswith(" ") or text[:1].isalnum() or text[:1] in "\n'\""


async def test_max_tokens_gives_length_and_exact_count(engine: TransformersEngine) -> None:
    _, chunks = await run(
        engine, completion("The numbers from one to one hundred: one, two,", temperature=0, max_tokens=7)
    )
    assert (chunks[-1].finish_reason, chunks[-1].completion_tokens) == ("length", 7)


async def test_stop_string_is_never_emitted(engine: TransformersEngine) -> None:
    prompt = "The numbers from one to one hundred: one, two,"
    full, _ = await run(engine, completion(prompt, temperature=0, max_tokens=20))
    stop = " five"
    assert stop in full, full
    text, chunks = await run(engine, completion(prompt, temperature=0, max_tokens=20, stop=(stop, "zzz")))
    assert text == full[: full.index(stop)]
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].completion_tokens < 20


async def test_seed_makes_sampling_reproducible(engine: TransformersEngine) -> None:
    request = chat("Write a short poem about the sea.", temperature=1.0, top_p=0.95, seed=1234, max_tokens=20)
    first, _ = await run(engine, request)
    second, _ = await run(engine, request)
    assert first == second
    other, _ = await run(
        engine, chat("Write a short poem about the sea.", temperature=1.0, top_p=0.95, seed=99, max_tokens=20)
    )
    assert other != first


async def test_concurrent_requests_share_the_batch_and_match_alone(engine: TransformersEngine) -> None:
    prompts = [
        "What is the capital of France?",
        "Name three colours.",
        "Explain in one sentence why the sky is blue, please, in simple words for a child.",
        "Say hello.",
    ]
    requests = [chat(p, temperature=0, max_tokens=16) for p in prompts]
    alone = [(await run(engine, r))[0] for r in requests]
    before = engine.stats.batched_steps
    together = await asyncio.gather(*(run(engine, r) for r in requests))
    assert engine.stats.batched_steps > before
    assert engine.stats.max_batch_size_seen >= 2
    # Left padding + masks keep each row's computation the same up to float rounding; on these prompts
    # the greedy choices agree exactly.
    assert [text for text, _ in together] == alone


async def test_closing_the_stream_cancels_and_frees_the_slot(engine: TransformersEngine) -> None:
    await wait_until_idle(engine)
    stream = engine.generate(completion("Once upon a time", temperature=0, max_tokens=500))
    await anext(stream)
    await wait_until(lambda: engine.stats.active == 1)
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_until_idle(engine, timeout_s=5)

    async def consume() -> None:
        async for _ in engine.generate(completion("Once upon a time", temperature=0, max_tokens=500)):
            pass

    task = asyncio.create_task(consume())
    await wait_until(lambda: engine.stats.active == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_idle(engine, timeout_s=5)


async def test_context_overflow_is_raised_before_any_text(engine: TransformersEngine) -> None:
    with pytest.raises(ContextLengthExceededError, match="maximum context length is 8192"):
        await anext(engine.generate(completion("hello " * 9000)))
    with pytest.raises(ContextLengthExceededError):
        await anext(engine.generate(chat("hi", max_tokens=8190)))
    assert engine.stats.active == 0


async def test_developer_role_and_tools_reach_the_template(engine: TransformersEngine) -> None:
    tool = {
        "type": "function",
        "function": {"name": "search", "parameters": {"type": "object", "properties": {}}},
    }
    developer = GenerationRequest(
        request_id="d",
        params=SamplingParams(temperature=0, max_tokens=4),
        messages=(
            ChatMessage(role="developer", content="Answer in French."),
            ChatMessage(role="user", content="Hi"),
        ),
        tools=(tool,),
    )
    system = GenerationRequest(
        request_id="s",
        params=SamplingParams(temperature=0, max_tokens=4),
        messages=(
            ChatMessage(role="system", content="Answer in French."),
            ChatMessage(role="user", content="Hi"),
        ),
        tools=(tool,),
    )
    a, ca = await run(engine, developer)
    b, cb = await run(engine, system)
    assert (a, ca[-1].prompt_tokens) == (b, cb[-1].prompt_tokens)


def test_conversion_is_complete_and_not_redone(smollm2_path: Path) -> None:
    from serving.gguf_convert import COMPLETE_MARKER, convert_gguf_to_safetensors, find_smollm2_gguf

    names = {path.name for path in smollm2_path.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "generation_config.json",
        COMPLETE_MARKER,
    } <= names
    assert "quantization_config" not in (smollm2_path / "config.json").read_text()
    assert not [p for p in smollm2_path.parent.iterdir() if p.name.startswith(".")]  # no temp dir left
    stages: list[str] = []
    started = time.perf_counter()
    again = convert_gguf_to_safetensors(find_smollm2_gguf(), smollm2_path, lambda s, d, t: stages.append(s))
    assert again == smollm2_path
    assert time.perf_counter() - started < 1.0
    assert stages == []
