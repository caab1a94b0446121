"""POST /v1/completions (legacy text completions)."""

from __future__ import annotations

import json

import pytest

URL = "/v1/completions"


def _body(**extra):
    return {"model": "scripted-double", "prompt": "once upon a time", **extra}


def test_json_answer_matches_spec(client, engine, spec):
    response = client.post(URL, json=_body(max_tokens=100))
    assert response.status_code == 200, response.text
    body = response.json()
    spec.check("CreateCompletionResponse", body)
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "Echo: once upon a time"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert engine.requests[-1].prompt == "once upon a time"
    assert engine.requests[-1].messages is None


def test_default_max_tokens_is_openais_16(client, engine):
    client.post(URL, json=_body())
    assert engine.requests[-1].params.max_tokens == 16


def test_stream_concatenates_to_the_json_answer(client, spec, parse_sse):
    plain = client.post(URL, json=_body(max_tokens=3)).json()
    response = client.post(URL, json=_body(max_tokens=3, stream=True, stream_options={"include_usage": True}))
    payloads = parse_sse(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    *content, usage = chunks
    assert usage["choices"] == [] and usage["usage"] == plain["usage"]
    assert "".join(c["choices"][0]["text"] for c in content) == plain["choices"][0]["text"]
    finishes = [c["choices"][0]["finish_reason"] for c in content if c["choices"][0]["finish_reason"]]
    assert finishes == ["length"]
    spec.check("CreateCompletionResponse", content[-1])  # the schema has no null finish_reason


def test_echo_prepends_the_prompt(client, parse_sse):
    body = client.post(URL, json=_body(echo=True, max_tokens=1)).json()
    assert body["choices"][0]["text"] == "once upon a timeEcho:"
    response = client.post(URL, json=_body(echo=True, max_tokens=1, stream=True))
    text = "".join(json.loads(p)["choices"][0]["text"] for p in parse_sse(response.text)[:-1])
    assert text == "once upon a timeEcho:"


def test_single_prompt_in_a_list_is_accepted(client):
    assert client.post(URL, json=_body(prompt=["hi there"])).json()["choices"][0]["text"] == "Echo: hi there"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": {"x": 1}}, "prompt"),
        ({"suffix": "end"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"n": 2}, "n"),
        ({"logprobs": 2}, "logprobs"),
        ({"max_tokens": -1}, "max_tokens"),
    ],
)
def test_unsupported_or_invalid_is_400(client, spec, extra, param):
    response = client.post(URL, json=_body(**extra))
    assert response.status_code == 400
    spec.check("ErrorResponse", response.json())
    assert response.json()["error"]["param"] == param
