"""Prompt length checks before tokenizing, and tokenizing off the event loop (issue 20, row 3)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.errors import ContextLengthExceededError
from serving.request_tokens import longest_token_chars, request_prompt_ids


class SlowTokenizerDouble:
    """Tokenizes one token per 4 characters, taking ``delay_s`` of CPU-bound time (as a real tokenizer
    does on megabytes); counts its calls."""

    chat_template = "{{ messages }}"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def get_vocab(self) -> dict[str, int]:
        return {"a": 0, "abcd": 1, "<|im_start|>": 2}

    def _tokens(self, text: str) -> list[int]:
        self.calls += 1
        deadline = time.monotonic() + self.delay_s
        while time.monotonic() < deadline:  # busy, like tokenizing: blocks whatever thread runs it
            pass
        return [1] * (len(text) // 4 + 1)

    def apply_chat_template(self, messages: list[dict[str, Any]], **_: Any) -> list[int]:
        return self._tokens("".join(m["content"] for m in messages))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self._tokens(text)


def _chat(text: str) -> GenerationRequest:
    return GenerationRequest("r", SamplingParams(), messages=(ChatMessage(role="user", content=text),))


def test_longest_token_is_read_from_the_vocabulary() -> None:
    assert longest_token_chars(SlowTokenizerDouble()) == len("<|im_start|>")


async def test_a_prompt_longer_than_the_context_could_hold_is_refused_untokenized() -> None:
    tokenizer = SlowTokenizerDouble(delay_s=5.0)
    huge = _chat("x" * 1_900_000)
    started = time.monotonic()
    with pytest.raises(ContextLengthExceededError, match="maximum context length is 8192") as refused:
        await request_prompt_ids(tokenizer, huge, 8192)
    assert refused.value.param == "messages"
    assert tokenizer.calls == 0
    assert time.monotonic() - started < 1.0
    prompt = GenerationRequest("r", SamplingParams(), prompt="y" * 200_000)
    with pytest.raises(ContextLengthExceededError) as refused:
        await request_prompt_ids(tokenizer, prompt, 8192)
    assert refused.value.param == "prompt" and tokenizer.calls == 0


async def test_tokenizing_runs_off_the_event_loop() -> None:
    tokenizer = SlowTokenizerDouble(delay_s=0.6)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    ids = await request_prompt_ids(tokenizer, _chat("hello " * 1000), 8192)
    task.cancel()
    assert len(ids) > 1000 and tokenizer.calls == 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert len(ticks) > 10
    assert max(gaps) < 0.4, max(gaps)  # the loop kept running while the tokenizer was busy
