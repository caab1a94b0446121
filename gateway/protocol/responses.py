"""``POST /v1/responses``: the request model (OpenAI's CreateResponse, the parts aihub serves).

Fields OpenAI has and aihub cannot honour answer a 400 naming them (``check_supported``); fields that
change nothing here (``service_tier``, ``prompt_cache_key``, ``parallel_tool_calls``…) are accepted.
Input items and tools are validated one by one so that the error names ``input[i]`` / ``tools[i]``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError

from core.errors import InvalidRequestError
from gateway.errors import from_validation_error
from gateway.protocol.chat import response_schema
from gateway.protocol.common import MAX_TOKENS_LIMIT, StrictWireModel
from gateway.protocol.response_input import CONTENT_TYPES, ITEM_MODELS, InputItem, MessageItem
from gateway.protocol.response_tools import TOOL_MODELS, FileSearchTool, FunctionTool, NamedTool, Tool

INCLUDABLE = frozenset({"file_search_call.results", "reasoning.encrypted_content"})
MAX_METADATA_KEYS = 16


class TextFormat(StrictWireModel):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextOptions(StrictWireModel):
    format: TextFormat | None = None
    verbosity: str | None = None


class Reasoning(StrictWireModel):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


def _validated(model: type[StrictWireModel], data: Any, param: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = from_validation_error(exc)
        error.param = f"{param}.{error.param}" if error.param else param
        raise error from None


class CreateResponseRequest(StrictWireModel):
    model: str = Field(min_length=1, max_length=512)
    input: str | list[dict[str, Any]] = Field(min_length=1)
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=16, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stream: bool | None = None
    store: bool | None = None
    previous_response_id: str | None = Field(default=None, min_length=1)
    metadata: dict[str, str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedTool | None = None
    include: list[str] | None = None
    text: TextOptions | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: Reasoning | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    background: bool | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    context_management: list[Any] | None = None
    # Accepted, changing nothing here:
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    stream_options: dict[str, Any] | None = None
    aihub: dict[str, Any] | None = None  # aihub extension: options for pipelines and agents

    @property
    def stores(self) -> bool:
        return self.store is not False  # OpenAI stores by default

    def check_supported(self) -> None:
        refusals: list[tuple[bool, str, str]] = [
            (bool(self.background), "background", "Background responses are not supported."),
            (
                self.conversation is not None,
                "conversation",
                "Conversations are not supported: use previous_response_id.",
            ),
            (self.prompt is not None, "prompt", "Stored prompt templates are not supported."),
            (bool(self.context_management), "context_management", "context_management is not supported."),
            (bool(self.top_logprobs), "top_logprobs", "logprobs are not supported."),
            (
                self.truncation == "auto",
                "truncation",
                "truncation 'auto' is not supported; an input "
                "longer than the context is a 400 (truncation 'disabled').",
            ),
            (
                self.reasoning is not None and self.reasoning.effort is not None,
                "reasoning.effort",
                "reasoning.effort is not supported: these models do not reason.",
            ),
            (
                self.stream_options is not None and not self.stream,
                "stream_options",
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            ),
        ]
        for refused, param, message in refusals:
            if refused:
                raise InvalidRequestError(message, param=param, code="unsupported_parameter")
        for index, value in enumerate(self.include or ()):
            if value not in INCLUDABLE:
                raise InvalidRequestError(
                    f"Invalid value for 'include': {value!r}; supported: file_search_call.results.",
                    param=f"include[{index}]",
                    code="unsupported_value",
                )
        if self.metadata is not None:
            too_long = [k for k, v in self.metadata.items() if len(k) > 64 or len(v) > 512]
            if len(self.metadata) > MAX_METADATA_KEYS or too_long:
                raise InvalidRequestError(
                    "metadata holds at most 16 pairs, keys of at most 64 characters and values of "
                    "at most 512.",
                    param="metadata",
                    code="invalid_value",
                )
        self._check_tool_choice(self.parsed_tools())

    def _check_tool_choice(self, tools: list[Tool]) -> None:
        choice = self.tool_choice
        if choice is None or choice == "none" or choice == "auto":
            return
        if not tools:
            raise InvalidRequestError(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                param="tool_choice",
                code="invalid_value",
            )
        if isinstance(choice, NamedTool):
            offered = any(
                isinstance(t, FileSearchTool)
                if choice.type == "file_search"
                else isinstance(t, FunctionTool) and t.name == choice.name
                for t in tools
            )
            if not offered:
                wanted = "file_search" if choice.type == "file_search" else f"function {choice.name!r}"
                raise InvalidRequestError(
                    f"Invalid value for 'tool_choice': no {wanted} tool is in 'tools'.",
                    param="tool_choice",
                    code="invalid_value",
                )

    def parsed_tools(self) -> list[Tool]:
        tools: list[Tool] = []
        for index, data in enumerate(self.tools or ()):
            kind = data.get("type")
            model = TOOL_MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                raise InvalidRequestError(
                    f"Tool type {kind!r} is not supported here; supported: function, file_search.",
                    param=f"tools[{index}].type",
                    code="unsupported_value",
                )
            tools.append(_validated(model, data, f"tools[{index}]"))
        if sum(isinstance(t, FileSearchTool) for t in tools) > 1:
            raise InvalidRequestError(
                "At most one file_search tool: name every store in its vector_store_ids.", param="tools"
            )
        names = [t.name for t in tools if isinstance(t, FunctionTool)]
        if len(names) != len(set(names)):
            raise InvalidRequestError("Function names in 'tools' must be unique.", param="tools")
        return tools

    def parsed_input(self) -> list[InputItem]:
        if isinstance(self.input, str):
            return [MessageItem(role="user", content=self.input)]
        items: list[InputItem] = []
        for index, data in enumerate(self.input):
            kind = data.get("type", "message")
            model = ITEM_MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                raise InvalidRequestError(
                    f"Input item type {kind!r} is not supported here; supported: message, "
                    "function_call, function_call_output, file_search_call.",
                    param=f"input[{index}].type",
                    code="unsupported_value",
                )
            content = data.get("content")
            if model is MessageItem and isinstance(content, list):
                for part_index, part in enumerate(content):
                    part_type = part.get("type") if isinstance(part, dict) else None
                    if part_type not in CONTENT_TYPES:
                        raise InvalidRequestError(
                            f"Content type {part_type!r} is not supported: these models read text only.",
                            param=f"input[{index}].content[{part_index}].type",
                            code="unsupported_value",
                        )
            items.append(_validated(model, data, f"input[{index}]"))
        return items

    def json_schema(self) -> dict[str, Any] | None:
        """The output constraint ``text.format`` asks for (the chat ``response_format`` rules)."""
        fmt = self.text.format if self.text is not None else None
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            return response_schema({"type": "json_object"})
        try:
            return response_schema(
                {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.schema_}}
            )
        except InvalidRequestError as exc:
            exc.param = (
                (exc.param or "")
                .replace("response_format.json_schema", "text.format")
                .replace("response_format", "text.format")
            )
            raise

    def text_wire(self) -> dict[str, Any]:
        fmt = self.text.format if self.text is not None else None
        if fmt is None:
            return {"format": {"type": "text"}}
        return {"format": fmt.model_dump(by_alias=True, exclude_none=True)}
