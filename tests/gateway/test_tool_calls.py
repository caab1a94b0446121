"""Hermes-style tool calls: parsing model output and writing tool turns back."""

import json

from core.chat import ChatMessage, ToolCall
from gateway.tool_calls import as_hermes_messages, parse_tool_calls, tools_system_prompt


def test_plain_text_has_no_calls() -> None:
    parsed = parse_tool_calls("  The answer is 42.\n")
    assert parsed.content == "The answer is 42." and parsed.tool_calls == ()


def test_calls_and_surrounding_content() -> None:
    text = (
        'Checking.\n<tool_call>\n{"name": "search", "arguments": {"query": "LUMI"}}\n</tool_call>\n'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Kajaani"}}</tool_call>'
    )
    parsed = parse_tool_calls(text)
    assert parsed.content == "Checking."
    assert [c.name for c in parsed.tool_calls] == ["search", "get_weather"]
    assert json.loads(parsed.tool_calls[0].arguments) == {"query": "LUMI"}
    assert parsed.tool_calls[0].id != parsed.tool_calls[1].id


def test_unclosed_last_block_and_string_arguments() -> None:
    parsed = parse_tool_calls('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}')
    (call,) = parsed.tool_calls
    assert call.name == "f" and json.loads(call.arguments) == {"x": 1}
    assert parsed.content == ""


def test_malformed_blocks_stay_in_the_content() -> None:
    text = '<tool_call>{not json}</tool_call> and <tool_call>{"arguments": {}}</tool_call>'
    parsed = parse_tool_calls(text)
    assert parsed.tool_calls == ()
    assert "{not json}" in parsed.content and '"arguments"' in parsed.content


def test_tool_turns_are_written_in_hermes_format() -> None:
    call = ToolCall(id="call_1", name="f", arguments='{"x": 1}')
    messages = [
        ChatMessage(role="user", content="q"),
        ChatMessage(role="assistant", content="", tool_calls=(call,)),
        ChatMessage(role="tool", content="one", tool_call_id="call_1"),
        ChatMessage(role="tool", content="two", tool_call_id="call_2"),
    ]
    out = as_hermes_messages(messages)
    assert [m.role for m in out] == ["user", "assistant", "user"]
    assert parse_tool_calls(out[1].content).tool_calls[0].name == "f"
    assert out[2].content == "<tool_response>\none\n</tool_response>\n<tool_response>\ntwo\n</tool_response>"


def test_system_prompt_lists_the_signatures() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    text = tools_system_prompt([tool])
    assert "<tools>" in text and json.dumps(tool) in text and "<tool_call>" in text
