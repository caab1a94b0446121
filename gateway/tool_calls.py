"""Hermes-style tool calls in model output, and the prompt text that asks a model for them.

A model calls a tool by writing ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; tool results
go back to it inside ``<tool_response>…</tool_response>``. This is the format of the Hermes / Qwen chat
templates (and vLLM's ``hermes`` parser); writing it into the messages ourselves makes any chat
template work, including ones that know nothing of tools.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.chat import ChatMessage, ToolCall

logger = logging.getLogger(__name__)

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    content: str  # the text outside tool-call blocks, stripped
    tool_calls: tuple[ToolCall, ...]


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _decode_call(raw: str) -> ToolCall | None:
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) or not payload["name"]:
        return None
    arguments = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):
        # Some models double-encode; keep the text only when it is itself JSON.
        try:
            json.loads(arguments)
        except json.JSONDecodeError:
            return None
        text = arguments
    else:
        text = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(id=new_call_id(), name=payload["name"], arguments=text)


def parse_tool_calls(text: str) -> ParsedOutput:
    """Split model output into content and tool calls.

    A block that is not valid JSON of the expected shape stays in the content (the client then sees
    what the model wrote) rather than failing the request. An unclosed last block (generation cut
    short) is parsed if its JSON is complete.
    """
    if OPEN not in text:
        return ParsedOutput(content=text.strip(), tool_calls=())
    calls: list[ToolCall] = []
    kept: list[str] = []
    position = 0
    for match in _BLOCK.finditer(text):
        kept.append(text[position : match.start()])
        call = _decode_call(match.group(1))
        if call is None:
            logger.info("model wrote an unparseable tool call: %.200s", match.group(1))
            kept.append(match.group(0))
        else:
            calls.append(call)
        position = match.end()
    kept.append(text[position:])
    return ParsedOutput(content="".join(kept).strip(), tool_calls=tuple(calls))


def decode_tool_call(text: str) -> ToolCall | None:
    """A tool call written as bare JSON ``{"name": ..., "arguments": {...}}`` (constrained output)."""
    return _decode_call(text.strip())


def tool_call_schema(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON schema of one call of one of ``tools``: what constrained decoding holds a step to."""
    options = []
    for tool in tools:
        function = tool.get("function") or {}
        parameters = function.get("parameters") or {"type": "object"}
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": function.get("name", "")}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def format_tool_call(call: ToolCall) -> str:
    try:
        arguments: Any = json.loads(call.arguments) if call.arguments else {}
    except json.JSONDecodeError:
        arguments = call.arguments
    return f"{OPEN}\n{json.dumps({'name': call.name, 'arguments': arguments}, ensure_ascii=False)}\n{CLOSE}"


def tools_system_prompt(tools: Sequence[Mapping[str, Any]]) -> str:
    """The instructions and function signatures, as Hermes-format models were trained to read them."""
    signatures = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools)
    return (
        "You may call one or more functions to help with the user's request. The function signatures "
        f"are inside <tools></tools>:\n<tools>\n{signatures}\n</tools>\n"
        "To call a function, write a JSON object with its name and arguments inside "
        "<tool_call></tool_call> tags, for example:\n"
        '<tool_call>\n{"name": "<function-name>", "arguments": {"<arg>": "<value>"}}\n</tool_call>\n'
        "Function results come back inside <tool_response></tool_response> tags. When you have what "
        "you need, answer without calling a function."
    )


def as_hermes_messages(messages: Iterable[ChatMessage]) -> list[ChatMessage]:
    """Rewrite assistant tool calls and tool results as plain turns in the Hermes format.

    Tool results become user turns so that chat templates without a ``tool`` role still work.
    """
    out: list[ChatMessage] = []
    for message in messages:
        if message.role == "assistant" and message.tool_calls:
            parts = [message.content] if message.content else []
            parts.extend(format_tool_call(call) for call in message.tool_calls)
            out.append(ChatMessage(role="assistant", content="\n".join(parts)))
        elif message.role == "tool":
            body = f"<tool_response>\n{message.content}\n</tool_response>"
            if out and out[-1].role == "user" and out[-1].content.startswith("<tool_response>"):
                out[-1] = ChatMessage(role="user", content=f"{out[-1].content}\n{body}")
            else:
                out.append(ChatMessage(role="user", content=body))
        else:
            out.append(message)
    return out
