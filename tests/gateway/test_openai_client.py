"""The official `openai` client (sync, async, streaming) against a real uvicorn server on loopback."""

from __future__ import annotations

import openai
import pytest

MESSAGES = [{"role": "user", "content": "tell me a story"}]


@pytest.fixture
def server(make_app, scripted, serve):
    engine = scripted("smollm2-135m-instruct")
    app = make_app(engine, model_aliases={"gpt-4o-mini": "smollm2-135m-instruct"}, api_keys=["sk-test"])
    with serve(app) as base_url:
        yield f"{base_url}/v1"


def test_sync_client(server):
    client = openai.OpenAI(base_url=server, api_key="sk-test", max_retries=0)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50)
    assert completion.choices[0].message.content == "Echo: tell me a story"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    ids = [model.id for model in client.models.list()]
    assert ids == ["smollm2-135m-instruct", "gpt-4o-mini"]
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    legacy = client.completions.create(model="smollm2-135m-instruct", prompt="a b", max_tokens=2)
    assert legacy.choices[0].text == "Echo: a"
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="missing", messages=MESSAGES)
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
    assert bad.value.param == "n"


def test_wrong_key_is_an_authentication_error(server):
    client = openai.OpenAI(base_url=server, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_sync_streaming_with_usage(server):
    client = openai.OpenAI(base_url=server, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: tell me a story"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12


async def test_async_client_and_stream(server):
    async with openai.AsyncOpenAI(base_url=server, api_key="sk-test", max_retries=0) as client:
        completion = await client.chat.completions.create(model="smollm2-135m-instruct", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="smollm2-135m-instruct", messages=MESSAGES, stream=True
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        assert text == completion.choices[0].message.content == "Echo: tell me a story"
        legacy = await client.completions.create(model="gpt-4o-mini", prompt="x y", stream=True)
        assert "".join([chunk.choices[0].text async for chunk in legacy]) == "Echo: x y"
