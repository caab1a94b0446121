"""Generation chunks of pipelines and agents: a plain chunk plus citations and tool calls.

The chat router reads the extra fields when present (``isinstance(chunk, ComposedChunk)``): citations
ride on the first chunk, tool calls on the last.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.chat import GenerationChunk, ToolCall

COMPOSITION_HEADER = "x-aihub-composition"


@dataclass(frozen=True, slots=True)
class ComposedChunk(GenerationChunk):
    citations: tuple[Mapping[str, Any], ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


def with_extras(
    chunk: GenerationChunk,
    citations: tuple[Mapping[str, Any], ...] = (),
    tool_calls: tuple[ToolCall, ...] = (),
) -> ComposedChunk:
    return ComposedChunk(
        text=chunk.text,
        finish_reason=chunk.finish_reason,
        prompt_tokens=chunk.prompt_tokens,
        completion_tokens=chunk.completion_tokens,
        citations=citations,
        tool_calls=tool_calls,
    )


def tool_calls_wire(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    """OpenAI's ``message.tool_calls`` (add ``index`` per item for streamed deltas)."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]
