"""``POST /v1/responses``: the tools a request may offer (functions, file_search), the named
``tool_choice``, and a tool as the response object echoes it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from gateway.protocol.chat import NAME_PATTERN
from gateway.protocol.common import StrictWireModel
from gateway.protocol.json_schema import SchemaShapeError, check_object_schema


class FunctionTool(StrictWireModel):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64, pattern=NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _parameters_are_a_schema(cls, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        if parameters is not None:
            try:
                check_object_schema(parameters)
            except SchemaShapeError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc}") from None
        return parameters

    def as_chat_tool(self) -> dict[str, Any]:
        """The chat-completions shape engines and chat templates take."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = self.parameters or {"type": "object", "properties": {}}
        return {"type": "function", "function": function}


class RankingOptions(StrictWireModel):
    ranker: str | None = None
    score_threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class FileSearchTool(StrictWireModel):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=16)
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None


Tool = FunctionTool | FileSearchTool
TOOL_MODELS: dict[str, type[StrictWireModel]] = {"function": FunctionTool, "file_search": FileSearchTool}


class NamedTool(StrictWireModel):
    type: Literal["function", "file_search"]
    name: str | None = None


def tool_wire(tool: Tool) -> dict[str, Any]:
    """A tool as the response object echoes it."""
    if isinstance(tool, FunctionTool):
        return {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters or {"type": "object", "properties": {}},
            "strict": tool.strict if tool.strict is not None else True,
        }
    wire: dict[str, Any] = {
        "type": "file_search",
        "vector_store_ids": tool.vector_store_ids,
        "max_num_results": tool.max_num_results,
        "filters": tool.filters,
    }
    if tool.ranking_options is not None:
        wire["ranking_options"] = tool.ranking_options.model_dump(exclude_none=True)
    return wire
