"""What a finished generation amounts to: the text, finish reason, usage, citations and tool calls."""

from __future__ import annotations

from dataclasses import dataclass

from core.chat import Citation, GenerationChunk, ToolCall


@dataclass(slots=True)
class Outcome:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    citations: tuple[Citation, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()

    @classmethod
    def of(cls, text: str, last: GenerationChunk | None, citations: tuple[Citation, ...]) -> Outcome:
        """The outcome whose final chunk is ``last``; tool calls handed back make it ``tool_calls``."""
        tool_calls = last.tool_calls if last is not None else ()
        finish = (last.finish_reason if last else None) or "stop"
        return cls(
            text=text,
            finish_reason="tool_calls" if tool_calls else finish,
            prompt_tokens=last.prompt_tokens if last else 0,
            completion_tokens=last.completion_tokens if last else 0,
            citations=citations,
            tool_calls=tool_calls,
        )
