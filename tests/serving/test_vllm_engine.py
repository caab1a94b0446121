"""The vLLM engine's CPU-testable parts. vLLM itself cannot run here (no GPU); its path is untested on CPU."""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams, ToolCall
from core.errors import EngineUnavailableError
from serving.chat_messages import template_messages
from serving.vllm_engine import VllmEngine, sampling_kwargs, to_chunk


def test_sampling_kwargs_map_our_params() -> None:
    kwargs = sampling_kwargs(SamplingParams(max_tokens=12, temperature=0.7, top_p=0.9, seed=3, stop=("\n",)))
    assert kwargs == {"n": 1, "temperature": 0.7, "top_p": 0.9, "seed": 3, "stop": ["\n"], "max_tokens": 12}


def test_greedy_ignores_top_p() -> None:
    assert sampling_kwargs(SamplingParams(temperature=0.0, top_p=0.5))["top_p"] == 1.0


def test_chat_messages_map_developer_and_tool_calls() -> None:
    messages = (
        ChatMessage(role="developer", content="be brief"),
        ChatMessage(role="assistant", content="", tool_calls=(ToolCall(id="c1", name="f", arguments="{}"),)),
        ChatMessage(role="tool", content="42", tool_call_id="c1"),
    )
    converted = template_messages(messages, knows_developer=False)
    assert converted[0] == {"role": "system", "content": "be brief"}
    assert converted[1]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert converted[2]["tool_call_id"] == "c1"


@dataclass
class CompletionOutputDouble:
    """Stands in for vllm.outputs.CompletionOutput, which needs vLLM installed."""

    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class RequestOutputDouble:
    """Stands in for vllm.outputs.RequestOutput."""

    outputs: list[CompletionOutputDouble]
    finished: bool


def test_to_chunk_maps_finish_reasons() -> None:
    running = to_chunk(RequestOutputDouble([CompletionOutputDouble("Hi", [1], None)], False), 5, 1)
    assert (running.text, running.finish_reason, running.prompt_tokens, running.completion_tokens) == (
        "Hi",
        None,
        5,
        1,
    )
    length = to_chunk(RequestOutputDouble([CompletionOutputDouble("", [2], "length")], True), 5, 2)
    assert length.finish_reason == "length"
    stopped = to_chunk(RequestOutputDouble([CompletionOutputDouble(".", [3], "stop")], True), 5, 3)
    assert stopped.finish_reason == "stop"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
async def test_start_without_vllm_is_a_clear_unavailable_error(tmp_path: Path) -> None:
    engine = VllmEngine("m", tmp_path)
    with pytest.raises(EngineUnavailableError, match="vLLM is not installed"):
        await engine.start()


async def test_generate_before_start_is_unavailable(tmp_path: Path) -> None:
    engine = VllmEngine("m", tmp_path)
    request = GenerationRequest(request_id="r", params=SamplingParams(), prompt="x")
    with pytest.raises(EngineUnavailableError):
        await anext(engine.generate(request))
