"""``POST /v1/responses``: the input items a request may hold (messages, earlier function calls and
their outputs, earlier file searches)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from gateway.protocol.common import StrictWireModel


class TextPart(StrictWireModel):
    type: Literal["input_text", "output_text", "text"]
    text: str
    annotations: list[dict[str, Any]] | None = None  # output_text of an earlier answer, sent back


class RefusalPart(StrictWireModel):
    type: Literal["refusal"]
    refusal: str


class MessageItem(StrictWireModel):
    type: Literal["message"] = "message"
    id: str | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[TextPart | RefusalPart]
    status: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text if isinstance(p, TextPart) else p.refusal for p in self.content)


class FunctionCallItem(StrictWireModel):
    type: Literal["function_call"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    status: str | None = None


class FunctionCallOutputItem(StrictWireModel):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str = Field(min_length=1)
    output: str | list[TextPart]
    status: str | None = None

    def text(self) -> str:
        return self.output if isinstance(self.output, str) else "\n".join(p.text for p in self.output)


class FileSearchCallItem(StrictWireModel):
    """An earlier turn's search, sent back with its output: kept in the history, not shown to the model."""

    type: Literal["file_search_call"]
    id: str
    queries: list[str] = Field(default_factory=list)
    status: str | None = None
    results: list[dict[str, Any]] | None = None


InputItem = MessageItem | FunctionCallItem | FunctionCallOutputItem | FileSearchCallItem
ITEM_MODELS: dict[str, type[StrictWireModel]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "file_search_call": FileSearchCallItem,
}
CONTENT_TYPES = {"input_text", "output_text", "text", "refusal"}
