"""The upstream side of the OpenAI wire format: request bodies, replies, and honest error mapping."""

from __future__ import annotations

import orjson
import pytest

from core.chat import ChatMessage, GenerationRequest, SamplingParams, ToolCall
from core.errors import (
    ContextLengthExceededError,
    EngineUnavailableError,
    InvalidRequestError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from serving.upstream import wire


def _request(**fields: object) -> GenerationRequest:
    messages = (
        ChatMessage("user", "weather?"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)),
        ChatMessage("tool", "rain", tool_call_id="call_1"),
    )
    return GenerationRequest(
        "r1", SamplingParams(max_tokens=8, temperature=0, stop=("\n",)), messages=messages, **fields
    )  # type: ignore[arg-type]


def test_streamed_requests_always_ask_for_usage_and_carry_what_the_engine_request_holds() -> None:
    body = orjson.loads(
        wire.request_body(_request(session="alice", json_schema={"type": "object"}), "m", stream=True)
    )
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (
        body["model"] == "m"
        and body["max_tokens"] == 8
        and body["stop"] == ["\n"]
        and body["user"] == "alice"
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    assert body["messages"][2]["tool_call_id"] == "call_1"
    assert body["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    with_schema = orjson.loads(wire.request_body(_request(json_schema=schema), "m", stream=False))
    assert with_schema["response_format"]["type"] == "json_schema"
    assert with_schema["response_format"]["json_schema"]["schema"] == schema
    plain = orjson.loads(
        wire.request_body(GenerationRequest("r", SamplingParams(), prompt="hi"), "m", stream=False)
    )
    assert plain == {"model": "m", "temperature": 1.0, "top_p": 1.0, "prompt": "hi"}


def test_the_finish_event_waits_for_usage_and_tool_call_deltas_are_joined() -> None:
    state = wire.StreamState(chat=True)
    first = state.event(
        b'{"choices": [{"delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]}'
    )
    assert first is not None and first.text == "Hi" and first.finish_reason is None
    calls = [
        b'{"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\\"a\\""}}]}}]}',
        b'{"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]}',
    ]
    assert [state.event(c) for c in calls] == [None, None]
    assert state.event(b'{"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}') is None
    assert state.event(b'{"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}}') is None
    final = state.final()
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("tool_calls", 11, 4)
    assert final.tool_calls == (ToolCall("c1", "f", '{"a": 1}'),)
    with pytest.raises(UpstreamError, match="mid-stream"):
        state.event(b'{"error": {"message": "engine died"}}')


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (
            400,
            {"error": {"message": "This model's maximum context length is 2048 tokens", "code": 400}},
            ContextLengthExceededError,
            "context_length_exceeded",
        ),
        (400, {"object": "error", "message": "bad top_p", "param": "top_p"}, InvalidRequestError, None),
        (422, {"detail": "field required"}, InvalidRequestError, None),
        (429, {"error": {"message": "slow down"}}, RateLimitError, "rate_limit_exceeded"),
        (401, {"error": {"message": "bad key"}}, UpstreamError, "upstream_error"),
        (404, {"error": {"message": "no such model"}}, UpstreamError, "upstream_error"),
        (500, b"Internal Server Error", UpstreamError, "upstream_error"),
        (503, {"error": {"message": "overloaded"}}, EngineUnavailableError, "engine_unavailable"),
        (504, b"", UpstreamTimeoutError, "upstream_timeout"),
    ],
)
def test_upstream_statuses_map_to_honest_errors(
    status: int, body: object, expected: type, code: str | None
) -> None:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    error = wire.error_for_status(status, data, "http://u/v1")
    assert type(error) is expected
    assert error.code == code
    if status == 400 and expected is InvalidRequestError:
        assert error.param == "top_p" and error.message == "bad top_p"


def test_a_reply_that_is_not_a_completion_is_a_bad_gateway() -> None:
    with pytest.raises(UpstreamError):
        wire.final_chunk(b'{"object": "list"}', chat=True)
    chunk = wire.final_chunk(
        b'{"choices": [{"message": {"content": null, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}',
        chat=True,
    )
    assert chunk.text == "" and chunk.tool_calls == (ToolCall("c", "f", "{}"),) and chunk.prompt_tokens == 3


def test_penalties_and_logit_bias_are_passed_on() -> None:
    params = SamplingParams(presence_penalty=0.5, frequency_penalty=1.0, logit_bias=((42, -100.0),))
    body = orjson.loads(wire.request_body(GenerationRequest("r", params, prompt="hi"), "m", stream=False))
    assert body["presence_penalty"] == 0.5 and body["frequency_penalty"] == 1.0
    assert body["logit_bias"] == {"42": -100.0}
