"""Chat messages as the dicts that Hugging Face chat templates (and vLLM) take."""

from __future__ import annotations

from typing import Any

from core.chat import ChatMessage


def template_messages(messages: tuple[ChatMessage, ...], knows_developer: bool) -> list[dict[str, Any]]:
    """Messages as chat-template dicts; ``developer`` becomes ``system`` where the template lacks it."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = "system" if message.role == "developer" and not knows_developer else message.role
        item: dict[str, Any] = {"role": role, "content": message.content}
        if message.name:
            item["name"] = message.name
        if message.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        if message.tool_call_id:
            item["tool_call_id"] = message.tool_call_id
        converted.append(item)
    return converted
