"""POST /v1/chat/completions: JSON and streamed answers, checked against OpenAI's spec."""

from __future__ import annotations

import json

CHAT = "/v1/chat/completions"


def _body(**extra):
    return {"model": "scripted-double", "messages": [{"role": "user", "content": "hello there"}], **extra}


def _stream(client, parse_sse, **extra):
    response = client.post(CHAT, json=_body(stream=True, **extra))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = parse_sse(response.text)
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


def test_json_answer_matches_spec_and_engine(client, engine, spec):
    response = client.post(CHAT, json=_body())
    assert response.status_code == 200
    body = response.json()
    spec.check("CreateChatCompletionResponse", body)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "scripted-double"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Echo: hello there", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert engine.requests[-1].request_id == body["id"]


def test_stream_chunks_match_spec_and_concatenate_to_the_json_answer(client, spec, parse_sse):
    chunks = _stream(client, parse_sse)
    for chunk in chunks:
        spec.check("CreateChatCompletionStreamResponse", chunk)
        assert chunk["object"] == "chat.completion.chunk"
        assert "usage" not in chunk
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    plain = client.post(CHAT, json=_body()).json()
    assert text == plain["choices"][0]["message"]["content"]


def test_stream_include_usage_ends_with_a_usage_chunk(client, spec, parse_sse):
    chunks = _stream(client, parse_sse, stream_options={"include_usage": True})
    for chunk in chunks:
        spec.check("CreateChatCompletionStreamResponse", chunk)
    *content, last = chunks
    assert last["choices"] == []
    assert last["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    assert all(chunk["usage"] is None for chunk in content)
    assert sum(1 for c in content if c["choices"][0]["finish_reason"]) == 1


def test_max_tokens_cuts_with_finish_reason_length(client, engine, spec, parse_sse):
    body = client.post(CHAT, json=_body(max_completion_tokens=2)).json()
    spec.check("CreateChatCompletionResponse", body)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == "Echo: hello"
    assert engine.requests[-1].params.max_tokens == 2
    chunks = _stream(client, parse_sse, max_tokens=1)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]] == [
        "length"
    ]


def test_request_fields_reach_the_engine(client, engine):
    tool = {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "result"},
        {"role": "user", "content": "go", "name": "ann"},
    ]
    response = client.post(
        CHAT,
        json={
            "model": "scripted-double",
            "messages": messages,
            "temperature": 0,
            "top_p": 0.5,
            "seed": 7,
            "stop": "END",
            "tools": [tool],
            "tool_choice": "auto",
            "user": "u-1",
            "some_future_field": {"x": 1},
        },
    )
    assert response.status_code == 200, response.text
    request = engine.requests[-1]
    assert [m.role for m in request.messages] == ["developer", "user", "assistant", "tool", "user"]
    assert request.messages[1].content == "part one\ntwo"
    assert request.messages[2].tool_calls[0].name == "search"
    assert request.messages[3].tool_call_id == "c1"
    assert request.messages[4].name == "ann"
    assert (request.params.temperature, request.params.top_p, request.params.seed) == (0.0, 0.5, 7)
    assert request.params.stop == ("END",)
    assert request.tools[0]["function"]["name"] == "search"
    client.post(CHAT, json=_body(tools=[tool], tool_choice="none", stop=["a", "b"]))
    assert engine.requests[-1].tools == ()
    assert engine.requests[-1].params.stop == ("a", "b")


def test_alias_is_usable_and_answers_with_the_served_model(client, engine):
    response = client.post(CHAT, json={**_body(), "model": "gpt-4o-mini"})
    assert response.status_code == 200
    assert response.json()["model"] == engine.info.id


def test_response_format_maps_to_a_json_schema() -> None:
    import pytest

    from core.errors import InvalidRequestError
    from gateway.protocol.chat import response_schema

    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert response_schema(None) is None
    assert response_schema({"type": "text"}) is None
    assert response_schema({"type": "json_object"}) == {"type": "object"}
    assert response_schema({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}) == schema
    for bad in ({"type": "json_schema"}, {"type": "xml"}):
        with pytest.raises(InvalidRequestError) as refused:
            response_schema(bad)
        assert refused.value.param == "response_format"


def test_unknown_response_format_is_a_400(client) -> None:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "scripted-double",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "yaml"},
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format"
