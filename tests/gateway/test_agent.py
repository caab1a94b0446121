"""The agent loop with a ScriptedEngineDouble: built-in search, client tools, continuation, step limit."""

import json
from pathlib import Path
from typing import Any

from core.chat import ChatMessage, GenerationRequest, SamplingParams, ToolCall
from gateway.composition import COMPOSITION_HEADER, CompositionResolver
from tests.gateway import composition_doubles as D

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
SEARCH_CALL = '<tool_call>\n{"name": "search_kb", "arguments": {"query": "LUMI Finland"}}\n</tool_call>'


def push_agent(hub: Any, max_steps: int = 3, **extra: Any) -> None:
    spec = {
        **extra,
        "model": "models/tiny:latest",
        "system_prompt": "You answer questions about EuroHPC sites.",
        "tools": [
            {
                "name": "search_kb",
                "type": "search",
                "description": "Search the KB.",
                "index": "indexes/kb:latest",
            }
        ],
        "max_steps": max_steps,
    }
    hub.store.push("agent", "agents/helpdesk", spec)


async def answer(target: Any, messages: list[ChatMessage], tools: tuple[Any, ...] = ()) -> Any:
    request = GenerationRequest(
        request_id="a", params=SamplingParams(), messages=tuple(messages), tools=tools
    )
    chunks = [chunk async for chunk in target.engine.generate(request)]
    assert len(chunks) == 1
    return chunks[0]


async def test_builtin_search_runs_in_the_gateway(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, [SEARCH_CALL, "LUMI is in Kajaani, Finland."])
    push_agent(hub)
    target = await CompositionResolver(hub.services).resolve("agent/helpdesk")
    assert target.headers[COMPOSITION_HEADER].startswith("sha256:")
    final = await answer(target, [ChatMessage(role="user", content="Where is LUMI?")])
    assert final.text == "LUMI is in Kajaani, Finland."
    assert final.finish_reason == "stop"
    assert final.tool_calls == ()
    assert "d2" in [c.doc_id for c in final.citations]
    first, second = hub.engine.requests
    system = first.messages[0]
    assert system.role == "system" and "EuroHPC sites" in system.content and '"search_kb"' in system.content
    response = second.messages[-1].content
    assert response.startswith("<tool_response>") and "Kajaani" in response
    assert hub.retriever.calls[0]["query"] == "LUMI Finland"
    assert final.completion_tokens == 4  # summed over both steps


async def test_client_tools_come_back_as_tool_calls_and_the_loop_continues(tmp_path: Path) -> None:
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Bologna"}}</tool_call>'
    hub = D.make_hub(tmp_path, [call, "It is sunny in Bologna."])
    push_agent(hub)
    target = await CompositionResolver(hub.services).resolve("agent/helpdesk")
    question = ChatMessage(role="user", content="Weather at Leonardo's site?")
    final = await answer(target, [question], tools=(WEATHER,))
    assert final.finish_reason == "tool_calls"
    (tool_call,) = final.tool_calls
    assert tool_call.name == "get_weather" and json.loads(tool_call.arguments) == {"city": "Bologna"}
    assert tool_call.id.startswith("call_")
    assert '"get_weather"' in hub.engine.requests[0].messages[0].content

    # The client runs the tool and sends the result back.
    history = [
        question,
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=(ToolCall(tool_call.id, "get_weather", tool_call.arguments),),
        ),
        ChatMessage(role="tool", content='{"sky": "sunny"}', tool_call_id=tool_call.id),
    ]
    final = await answer(target, history, tools=(WEATHER,))
    assert final.text == "It is sunny in Bologna." and final.finish_reason == "stop"
    sent = hub.engine.requests[-1].messages
    assert (
        sent[-2].role == "assistant" and "<tool_call>" in sent[-2].content and "Bologna" in sent[-2].content
    )
    assert (
        sent[-1].role == "user" and sent[-1].content == '<tool_response>\n{"sky": "sunny"}\n</tool_response>'
    )


async def test_max_steps_bounds_the_loop(tmp_path: Path) -> None:
    hub = D.make_hub(tmp_path, ["Let me look. " + SEARCH_CALL])
    push_agent(hub, max_steps=2)
    target = await CompositionResolver(hub.services).resolve("agent/helpdesk")
    final = await answer(target, [ChatMessage(role="user", content="Where is LUMI?")])
    assert len(hub.engine.requests) == 2
    assert len(hub.retriever.calls) == 1  # no tool run after the last step
    assert final.finish_reason == "length"
    assert final.text == "Let me look."


async def test_unknown_tools_and_bad_arguments_are_reported_to_the_model(tmp_path: Path) -> None:
    outputs = [
        '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "search_kb", "arguments": {"q": 1}}</tool_call>',
        "done",
    ]
    hub = D.make_hub(tmp_path, outputs)
    push_agent(hub, max_steps=5)
    target = await CompositionResolver(hub.services).resolve("agent/helpdesk")
    final = await answer(target, [ChatMessage(role="user", content="hi")])
    assert final.text == "done"
    assert "unknown tool 'nope'" in hub.engine.requests[1].messages[-1].content
    assert "non-empty 'query'" in hub.engine.requests[2].messages[-1].content
    assert hub.retriever.calls == []


async def test_required_tool_choice_holds_the_first_step_to_a_call(tmp_path: Path) -> None:
    import dataclasses

    bare_call = '{"name": "search_kb", "arguments": {"query": "LUMI Finland"}}'
    hub = D.make_hub(tmp_path, [bare_call, "LUMI is in Kajaani, Finland."])
    hub.engine._info = dataclasses.replace(hub.engine.info, structured_output=True)
    push_agent(hub, tool_choice="required")
    target = await CompositionResolver(hub.services).resolve("agent/helpdesk")
    final = await answer(target, [ChatMessage(role="user", content="Where is LUMI?")])
    assert final.text == "LUMI is in Kajaani, Finland."
    assert "d2" in [c.doc_id for c in final.citations]
    first, second = hub.engine.requests
    schema = first.json_schema
    assert schema is not None and schema["properties"]["name"] == {"const": "search_kb"}
    assert second.json_schema is None  # later steps are free to answer
    # the history shows the call in the Hermes format the model reads
    assert (
        second.messages[-2].content.startswith("<tool_call>")
        and "LUMI Finland" in second.messages[-2].content
    )


async def test_required_tool_choice_needs_structured_output(tmp_path: Path) -> None:
    import pytest

    from core.errors import InvalidSpecError

    hub = D.make_hub(tmp_path, ["unused"])
    push_agent(hub, tool_choice="required")
    with pytest.raises(InvalidSpecError, match="structured output"):
        await CompositionResolver(hub.services).resolve("agent/helpdesk")
