"""No request body makes the parser answer 500 or hang (hypothesis; schemathesis on the OpenAPI document)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.protocol.chat import ChatCompletionRequest

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
content = st.one_of(
    st.text(max_size=30),
    st.none(),
    st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "refusal"])},
            optional={"text": st.text(max_size=10)},
        ),
        max_size=3,
    ),
    json_values,
)
message = st.fixed_dictionaries(
    {"role": roles},
    optional={
        "content": content,
        "tool_call_id": st.text(max_size=5),
        "name": json_values,
        "tool_calls": json_values,
    },
)
chat_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["scripted-double", "gpt-4o-mini", "", "nope"]) | json_values},
    optional={
        "messages": st.lists(message, max_size=3) | json_values,
        "prompt": json_values,
        "max_tokens": st.integers() | json_values,
        "max_completion_tokens": st.integers(),
        "temperature": st.floats() | json_values,
        "top_p": st.floats(),
        "seed": st.integers(),
        "stop": json_values,
        "n": st.integers(),
        "stream": st.booleans() | json_values,
        "stream_options": json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "echo": st.booleans(),
        "logprobs": json_values,
    },
)


@pytest.fixture(scope="module")
def fuzz_client(make_app, scripted):
    engine = scripted()
    app = make_app(engine, model_aliases={"gpt-4o-mini": engine.info.id}, max_request_bytes=64 * 1024)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _check(response) -> None:
    assert response.status_code in (200, 400, 404, 413), response.text
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=chat_bodies, endpoint=st.sampled_from(ENDPOINTS))
def test_structured_bodies_never_fail_the_server(fuzz_client, body, endpoint):
    _check(fuzz_client.post(endpoint, content=json.dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(raw=st.binary(max_size=200), endpoint=st.sampled_from(ENDPOINTS))
def test_arbitrary_bytes_never_fail_the_server(fuzz_client, raw, endpoint):
    _check(fuzz_client.post(endpoint, content=raw, headers={"content-type": "application/json"}))


@settings(max_examples=80, deadline=None)
@given(body=chat_bodies)
def test_parser_raises_only_validation_or_request_errors(body):
    """The pydantic model alone, fast: valid bodies convert, invalid ones raise cleanly."""
    from pydantic import ValidationError

    from core.errors import InvalidRequestError

    try:
        request = ChatCompletionRequest.model_validate_json(json.dumps(body))
        request.to_generation("fuzz")
    except (ValidationError, InvalidRequestError):
        pass
