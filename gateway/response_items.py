"""Responses items: the request's input items as stored and listed (with ids), and a conversation of
items (earlier turns, this input) as the chat messages an engine reads."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.chat import ChatMessage, Role, ToolCall
from gateway.protocol.response_input import (
    FileSearchCallItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputItem,
    MessageItem,
)


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(16).hex()}"


def output_text_part(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def input_resource(item: InputItem) -> dict[str, Any]:
    """One input item as ``input_items`` lists it (OpenAI's ItemResource shapes)."""
    if isinstance(item, MessageItem):
        if item.role == "assistant":  # an earlier answer sent back: an output message
            return {
                "id": item.id or new_item_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [output_text_part(item.text())],
            }
        return {
            "id": item.id or new_item_id("msg"),
            "type": "message",
            "role": item.role,
            "status": "completed",
            "content": [{"type": "input_text", "text": item.text()}],
        }
    if isinstance(item, FunctionCallItem):
        return {
            "id": item.id or new_item_id("fc"),
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
            "status": "completed",
        }
    if isinstance(item, FunctionCallOutputItem):
        return {
            "id": item.id or new_item_id("fco"),
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": item.text(),
            "status": "completed",
        }
    assert isinstance(item, FileSearchCallItem)
    return {
        "id": item.id,
        "type": "file_search_call",
        "status": "completed",
        "queries": item.queries,
        "results": item.results,
    }


# developer turns as system ones: chat templates know the system role, not always the developer one.
_ROLES: dict[Any, Role] = {
    "user": "user",
    "system": "system",
    "developer": "system",
    "assistant": "assistant",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or ():
        if isinstance(part, Mapping):
            parts.append(str(part.get("text") or part.get("refusal") or ""))
    return "\n".join(parts)


def to_messages(items: Iterable[Mapping[str, Any]]) -> list[ChatMessage]:
    """Stored or input item resources as chat turns. Function calls join the assistant turn before
    them; file search calls are left out (their results were context of their own turn only)."""
    messages: list[ChatMessage] = []
    for item in items:
        kind = item.get("type")
        if kind == "message":
            role = _ROLES.get(item.get("role"), "user")
            messages.append(ChatMessage(role=role, content=_text(item.get("content"))))
        elif kind == "function_call":
            call = ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = ChatMessage(
                    role="assistant", content=last.content, tool_calls=(*last.tool_calls, call)
                )
            else:
                messages.append(ChatMessage(role="assistant", content="", tool_calls=(call,)))
        elif kind == "function_call_output":
            messages.append(
                ChatMessage(role="tool", content=_text(item.get("output")), tool_call_id=item["call_id"])
            )
    return messages


def last_user_text(items: Sequence[Mapping[str, Any]]) -> str | None:
    """The file search query: the newest user message's text."""
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == "user":
            return _text(item.get("content"))
    return None
