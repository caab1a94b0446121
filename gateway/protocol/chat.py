"""``POST /v1/chat/completions`` request model, and its conversion to a ``GenerationRequest``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from core.chat import ChatMessage, GenerationRequest, ToolCall
from core.errors import InvalidRequestError
from gateway.protocol.common import MAX_TOKENS_LIMIT, SamplingFields, WireModel


class ContentPart(WireModel):
    """Only text (and, in assistant turns, refusal) parts: the engines are text-only."""

    type: Literal["text", "refusal"]
    text: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _has_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text content part needs 'text'")
        if self.type == "refusal" and self.refusal is None:
            raise ValueError("a refusal content part needs 'refusal'")
        return self

    def as_text(self) -> str:
        return (self.text if self.type == "text" else self.refusal) or ""


class FunctionCall(WireModel):
    name: str
    arguments: str


class ToolCallIn(WireModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDefinition(WireModel):
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(WireModel):
    type: Literal["function"]
    function: FunctionDefinition


class ChatMessageIn(WireModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> ChatMessageIn:
        if self.content is None and not (self.role == "assistant" and (self.tool_calls or self.refusal)):
            raise ValueError(f"a message with role '{self.role}' needs 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id'")
        only_text = not isinstance(self.content, list) or all(p.type == "text" for p in self.content)
        if self.role != "assistant" and not only_text:
            raise ValueError(f"a message with role '{self.role}' may only hold text content parts")
        return self

    def to_core(self) -> ChatMessage:
        if self.content is None:
            text = self.refusal or ""
        elif isinstance(self.content, str):
            text = self.content
        else:
            text = "\n".join(part.as_text() for part in self.content)
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in self.tool_calls or ()
        )
        return ChatMessage(
            role=self.role, content=text, name=self.name, tool_calls=calls, tool_call_id=self.tool_call_id
        )


class ChatCompletionRequest(SamplingFields):
    """What OpenAI's CreateChatCompletionRequest accepts; unsupported options answer a clear 400."""

    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    tools: list[ToolDefinition] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # json_schema / json_object constrain the output on engines that can (vLLM); others answer 400.
    response_format: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None

    def to_generation(self, request_id: str) -> GenerationRequest:
        self.check_supported()
        if self.logprobs:
            raise InvalidRequestError(
                "logprobs are not supported.", param="logprobs", code="unsupported_value"
            )
        tools: tuple[dict[str, Any], ...] = ()
        if self.tools and self.tool_choice != "none":
            tools = tuple(tool.model_dump(exclude_none=True) for tool in self.tools)
        return self.generation_request(
            request_id,
            self.sampling(self.max_completion_tokens or self.max_tokens),
            messages=tuple(message.to_core() for message in self.messages),
            tools=tools,
            json_schema=response_schema(self.response_format),
        )


def response_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema OpenAI's ``response_format`` asks the output to follow (None: free text)."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = (response_format or {}).get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return schema
        raise InvalidRequestError(
            "response_format json_schema needs a `json_schema` object with a `schema`.",
            param="response_format",
            code="invalid_value",
        )
    raise InvalidRequestError(
        f"response_format type {kind!r} is not one of text, json_object, json_schema.",
        param="response_format",
        code="invalid_value",
    )
