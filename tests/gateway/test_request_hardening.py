"""Malformed OpenAI request bodies get OpenAI's 400 with the offending field named (issue 20, rows 10, 11)."""

from __future__ import annotations

import pytest

CHAT = "/v1/chat/completions"
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def _body(**extra):
    return {"model": "scripted-double", "messages": [{"role": "user", "content": "hello"}], **extra}


def _refused(response, param: str | None) -> dict:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    return error


def test_stream_options_without_stream_is_a_400(client) -> None:
    for extra in ({}, {"stream": False}):
        response = client.post(CHAT, json=_body(stream_options={"include_usage": True}, **extra))
        error = _refused(response, "stream_options")
        assert "stream" in error["message"]
    assert client.post(CHAT, json=_body(stream_options=None)).status_code == 200


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": 12},
        {"type": "object", "properties": []},
        {"type": "object", "properties": {"city": {"type": "town"}}},
        {"type": "object", "required": "city"},
        {"type": "string"},
    ],
)
def test_tool_parameters_that_are_no_json_schema_are_a_400(client, parameters) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": parameters}}
    _refused(client.post(CHAT, json=_body(tools=[tool])), "tools[0].function.parameters")


def test_tool_names_follow_openais_pattern(client) -> None:
    tool = {"type": "function", "function": {"name": "get weather!"}}
    _refused(client.post(CHAT, json=_body(tools=[tool])), "tools[0].function.name")


def test_tool_choice_naming_an_unknown_function_is_a_400(client, engine) -> None:
    unknown = {"type": "function", "function": {"name": "get_time"}}
    error = _refused(client.post(CHAT, json=_body(tools=[WEATHER], tool_choice=unknown)), "tool_choice")
    assert "get_time" in error["message"]
    _refused(client.post(CHAT, json=_body(tool_choice=unknown)), "tool_choice")  # no tools at all
    _refused(client.post(CHAT, json=_body(tool_choice={"type": "function"})), "tool_choice.function")
    other = {"type": "function", "function": {"name": "other"}}
    known = {"type": "function", "function": {"name": "get_weather"}}
    response = client.post(CHAT, json=_body(tools=[other, WEATHER], tool_choice=known))
    assert response.status_code == 200, response.text
    assert [tool["function"]["name"] for tool in engine.requests[-1].tools] == ["get_weather"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", "5"),
        ("max_tokens", 5.0),
        ("max_tokens", True),
        ("max_completion_tokens", "5"),
        ("n", "1"),
        ("temperature", "0.5"),
        ("top_p", "1"),
        ("seed", "7"),
        ("stream", "true"),
        ("stream", 1),
        ("logprobs", "false"),
        ("presence_penalty", "0"),
        ("top_logprobs", "2"),
    ],
)
def test_numbers_and_booleans_given_as_strings_are_a_400(client, field, value) -> None:
    _refused(client.post(CHAT, json=_body(**{field: value})), field)


def test_integers_stay_acceptable_where_numbers_are(client) -> None:
    response = client.post(CHAT, json=_body(temperature=1, top_p=1, presence_penalty=0, max_tokens=5))
    assert response.status_code == 200, response.text


def test_completions_and_embeddings_are_strict_too(client) -> None:
    response = client.post(
        "/v1/completions", json={"model": "scripted-double", "prompt": "a", "max_tokens": "5"}
    )
    _refused(response, "max_tokens")
    completion = {"model": "scripted-double", "prompt": "a", "stream_options": {"include_usage": True}}
    _refused(client.post("/v1/completions", json=completion), "stream_options")
    embedding = {"model": "scripted-double", "input": "a", "dimensions": "8"}
    _refused(client.post("/v1/embeddings", json=embedding), "dimensions")


def test_response_format_schema_and_name_are_checked(client) -> None:
    bad_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}
    _refused(client.post(CHAT, json=_body(response_format=bad_schema)), "response_format.json_schema.schema")
    no_name = {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}
    _refused(client.post(CHAT, json=_body(response_format=no_name)), "response_format.json_schema.name")


def _nested(depth: int) -> str:
    return '{"model": "scripted-double", "messages": [], "metadata": ' + "[" * depth + "]" * depth + "}"


def test_json_nested_too_deep_says_so(client) -> None:
    response = client.post(CHAT, content=_nested(400), headers={"content-type": "application/json"})
    error = _refused(response, None)
    assert "nested too deep" in error["message"]
    assert error["code"] == "invalid_json"
    shallow = client.post(CHAT, content=_nested(150), headers={"content-type": "application/json"})
    assert "nested too deep" not in shallow.json()["error"]["message"]
    broken = client.post(CHAT, content=b'{"model": ', headers={"content-type": "application/json"})
    assert "nested too deep" not in _refused(broken, None)["message"]


def test_penalties_and_logit_bias_reach_the_engine(client, engine) -> None:
    body = _body(presence_penalty=0.5, frequency_penalty=-1, logit_bias={"1000": 100, "7": -2.5})
    assert client.post(CHAT, json=body).status_code == 200
    params = engine.requests[-1].params
    assert (params.presence_penalty, params.frequency_penalty) == (0.5, -1.0)
    assert params.logit_bias == ((7, -2.5), (1000, 100.0))


@pytest.mark.parametrize(
    "logit_bias",
    [{"abc": 1}, {"-5": 1}, {"1.5": 1}, {"12": 101}, {"12": -100.5}, {"12": "5"}, {"١٢": 1}],
)
def test_malformed_logit_bias_is_a_400(client, logit_bias) -> None:
    response = client.post(CHAT, json=_body(logit_bias=logit_bias))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] in ("logit_bias", *(f"logit_bias.{key}" for key in logit_bias))
