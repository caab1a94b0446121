"""rag/ and agent/ models through the real app and uvicorn, called with the official OpenAI client."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway import composition_doubles as D

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def serve_hub(hub: Any, serve: Callable[[Any], Any]) -> Any:
    app = create_app(GatewaySettings(), hub.services)
    if not any(entry.id.startswith(("rag/", "agent/")) for entry in app.state.gateway.catalog.entries()):
        pytest.skip("create_app does not add gateway.composition.CompositionResolver to its catalog yet")
    return serve(app)


def test_pipeline_answers_with_citations_and_composition_header(tmp_path: Path, serve: Any) -> None:
    hub = D.make_hub(tmp_path, ["Bologna [1]."])
    D.push_pipeline(hub, tags=("latest", "prod"), retrieval={"top_k": 3})
    with serve_hub(hub, serve) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="none")
        ids = [m.id for m in client.models.list()]
        assert {"tiny", "rag/support", "rag/support:prod"} <= set(ids)
        raw = client.chat.completions.with_raw_response.create(
            model="rag/support:prod",
            messages=[{"role": "user", "content": "Where is the Leonardo supercomputer hosted?"}],
            extra_body={"aihub": {"top_k": 1}},
        )
        assert raw.headers["x-aihub-composition"].startswith("sha256:")
        completion = raw.parse()
        assert completion.choices[0].message.content == "Bologna [1]."
        assert completion.model == "rag/support:prod"
        (cited,) = completion.model_extra["citations"]
        assert cited["doc_id"] == "d1" and cited["source"] == "kb/leonardo.md"

        stream = client.chat.completions.create(
            model="rag/support",
            messages=[{"role": "user", "content": "Where is LUMI hosted?"}],
            stream=True,
        )
        chunks = list(stream)
        assert chunks[0].model_extra["citations"][0]["doc_id"] == "d2"
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bologna [1]."


def test_tag_moves_are_served_without_restart(tmp_path: Path, serve: Any) -> None:
    hub = D.make_hub(tmp_path, ["ok"])
    first = D.push_pipeline(hub, tags=("prod",))
    with serve_hub(hub, serve) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="none")

        def composition(model: str) -> str:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "LUMI?"}]
            )
            return raw.headers["x-aihub-composition"]

        before = composition("rag/support:prod")
        D.push_pipeline(hub, tags=("prod",), retrieval={"top_k": 1})
        time.sleep(1.1)  # past the default tag TTL of 1 s
        assert composition("rag/support:prod") != before
        assert composition(f"rag/support@{first}") == before
        with pytest.raises(openai.NotFoundError):
            composition("rag/missing")


def test_agent_hands_client_tool_calls_back(tmp_path: Path, serve: Any) -> None:
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Bologna"}}</tool_call>'
    hub = D.make_hub(tmp_path, [call, "Sunny.", call])
    hub.store.push("agent", "agents/helpdesk", {"model": "models/tiny:latest", "system_prompt": "Be brief."})
    with serve_hub(hub, serve) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="none")
        messages: list[Any] = [{"role": "user", "content": "Weather in Bologna?"}]
        first = client.chat.completions.create(model="agent/helpdesk", messages=messages, tools=[WEATHER])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        (tool_call,) = choice.message.tool_calls
        assert tool_call.function.name == "get_weather"
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": tool_call.id, "content": "sunny"},
        ]
        second = client.chat.completions.create(model="agent/helpdesk", messages=messages, tools=[WEATHER])
        assert second.choices[0].message.content == "Sunny."
        assert second.choices[0].finish_reason == "stop"

        stream = list(
            client.chat.completions.create(
                model="agent/helpdesk", messages=messages[:1], tools=[WEATHER], stream=True
            )
        )
        finish = [c.choices[0] for c in stream if c.choices and c.choices[0].finish_reason]
        assert finish[0].finish_reason == "tool_calls"
        assert finish[0].delta.tool_calls[0].function.name == "get_weather"
