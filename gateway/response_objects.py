"""``response`` objects and their output items (OpenAI's Response schema), built as plain dicts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.chat import ToolCall
from gateway.file_search import FileSearchResult
from gateway.outcome import Outcome
from gateway.protocol.response_tools import NamedTool, Tool, tool_wire
from gateway.protocol.responses import CreateResponseRequest
from gateway.response_items import output_text_part

COMPOSITION_FIELD = "composition"  # aihub's extra field: the composition digest of a rag/ or agent/ answer


@dataclass(slots=True)
class SearchCall:
    """The file search done for a request, as its ``file_search_call`` item reports it."""

    id: str
    query: str
    results: list[FileSearchResult]
    include_results: bool

    def item(self, status: str = "completed") -> dict[str, Any]:
        done = status == "completed"
        results = [r.as_wire() for r in self.results] if self.include_results and done else None
        return {
            "id": self.id,
            "type": "file_search_call",
            "status": status,
            "queries": [self.query],
            "results": results,
        }


@dataclass(slots=True)
class Draft:
    """Everything about a response known before the model runs."""

    id: str
    model: str
    body: CreateResponseRequest
    tools: list[Tool]
    store: bool
    composition: str | None = None
    search: SearchCall | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))

    def object(
        self,
        status: str,
        output: Sequence[dict[str, Any]] = (),
        usage: dict[str, Any] | None = None,
        *,
        error: dict[str, str] | None = None,
        incomplete: str | None = None,
    ) -> dict[str, Any]:
        body = self.body
        choice = body.tool_choice
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "model": self.model,
            "output": list(output),
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": body.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": self.store,
            "temperature": 1.0 if body.temperature is None else body.temperature,
            "text": body.text_wire(),
            "tool_choice": choice.model_dump(exclude_none=True)
            if isinstance(choice, NamedTool)
            else choice or "auto",
            "tools": [tool_wire(t) for t in self.tools],
            "top_p": 1.0 if body.top_p is None else body.top_p,
            "truncation": "disabled",
            "metadata": body.metadata or {},
        }
        if usage is not None:  # not null while in progress: absent
            payload["usage"] = usage
        if body.user is not None:
            payload["user"] = body.user
        if self.composition is not None:
            payload[COMPOSITION_FIELD] = self.composition
        return payload


def usage_wire(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def message_item(
    item_id: str, text: str, annotations: list[dict[str, Any]], status: str = "completed"
) -> dict[str, Any]:
    content = [output_text_part(text, annotations)] if status != "in_progress" else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def function_call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    arguments = call.arguments if status == "completed" else ""
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": arguments,
        "status": status,
    }


def final_status(outcome: Outcome) -> tuple[str, str | None]:
    """(status, incomplete reason): an answer cut at max_output_tokens is ``incomplete``."""
    if outcome.finish_reason == "length":
        return "incomplete", "max_output_tokens"
    return "completed", None
