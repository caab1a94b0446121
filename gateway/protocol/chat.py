"""``POST /v1/chat/completions``: the request model, its conversion to a ``GenerationRequest``, and the
response and stream chunk bodies."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from core.chat import ChatMessage, Citation, GenerationChunk, GenerationRequest, ToolCall
from core.errors import InvalidRequestError
from gateway.outcome import Outcome
from gateway.protocol.common import (
    MAX_TOKENS_LIMIT,
    ResponseHead,
    SamplingFields,
    StrictWireModel,
    citations_wire,
    tool_calls_wire,
    usage_wire,
)
from gateway.protocol.json_schema import SchemaShapeError, check_object_schema, check_schema_shape

# OpenAI's rule for function and response format names.
NAME_PATTERN = r"^[a-zA-Z0-9_-]+$"
FORMAT_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


class ContentPart(StrictWireModel):
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


class FunctionCall(StrictWireModel):
    name: str
    arguments: str


class ToolCallIn(StrictWireModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionDefinition(StrictWireModel):
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


class ToolDefinition(StrictWireModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(StrictWireModel):
    name: str


class NamedToolChoice(StrictWireModel):
    """``{"type": "function", "function": {"name": ...}}``: the model must call that tool."""

    type: Literal["function"]
    function: NamedFunction


class ChatMessageIn(StrictWireModel):
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
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # json_schema / json_object constrain the output on engines that can (vLLM); others answer 400.
    response_format: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None

    def check_supported(self) -> None:
        super().check_supported()
        choice = self.tool_choice
        if choice is not None and not self.tools and choice != "none":
            raise InvalidRequestError(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                param="tool_choice",
                code="invalid_value",
            )
        if isinstance(choice, NamedToolChoice):
            name = choice.function.name
            if not any(tool.function.name == name for tool in self.tools or ()):
                raise InvalidRequestError(
                    f"Invalid value for 'tool_choice': no function named {name!r} is in 'tools'.",
                    param="tool_choice",
                    code="invalid_value",
                )

    def to_generation(self, request_id: str) -> GenerationRequest:
        self.check_supported()
        if self.logprobs:
            raise InvalidRequestError(
                "logprobs are not supported.", param="logprobs", code="unsupported_value"
            )
        tools: tuple[dict[str, Any], ...] = ()
        if self.tools and self.tool_choice != "none":
            offered = self.tools
            if isinstance(self.tool_choice, NamedToolChoice):  # only the named tool is offered
                offered = [t for t in self.tools if t.function.name == self.tool_choice.function.name]
            tools = tuple(tool.model_dump(exclude_none=True) for tool in offered)
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
        if not isinstance(spec, dict) or not isinstance(schema, dict):
            raise InvalidRequestError(
                "response_format json_schema needs a `json_schema` object with a `schema`.",
                param="response_format",
                code="invalid_value",
            )
        name = spec.get("name")
        if not isinstance(name, str) or not FORMAT_NAME.fullmatch(name):
            raise InvalidRequestError(
                "response_format json_schema needs a `name` of at most 64 letters, digits, '_' or '-'.",
                param="response_format.json_schema.name",
                code="invalid_value",
            )
        try:
            check_schema_shape(schema)
        except SchemaShapeError as exc:
            raise InvalidRequestError(
                f"Invalid schema for response_format {name!r}: {exc}",
                param="response_format.json_schema.schema",
                code="invalid_value",
            ) from None
        return schema
    raise InvalidRequestError(
        f"response_format type {kind!r} is not one of text, json_object, json_schema.",
        param="response_format",
        code="invalid_value",
    )


def chat_completion(head: ResponseHead, outcome: Outcome) -> dict[str, Any]:
    """A ``chat.completion`` object (OpenAI's CreateChatCompletionResponse), with aihub's citations."""
    message: dict[str, Any] = {"role": "assistant", "content": outcome.text, "refusal": None}
    if outcome.tool_calls:
        message["tool_calls"] = tool_calls_wire(outcome.tool_calls)
        message["content"] = outcome.text or None
    payload = {
        **head.fields("chat.completion"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": outcome.finish_reason}
        ],
        "usage": usage_wire(outcome),
    }
    if outcome.citations:
        payload["citations"] = citations_wire(outcome.citations)
    return payload


class ChatChunks:
    """The ``chat.completion.chunk`` payloads of one stream: the role rides on the first, citations on
    the first that has them, the finish reason and tool calls on the last; usage after, when asked for."""

    def __init__(self, head: ResponseHead, include_usage: bool) -> None:
        self._head = head.fields("chat.completion.chunk")
        self._include_usage = include_usage
        self._sent_role = False
        self._sent_citations = False

    def _delta(self, content: str) -> dict[str, Any]:
        if self._sent_role:
            return {"content": content}
        self._sent_role = True
        return {"role": "assistant", "content": content}

    def _chunk(
        self, delta: dict[str, Any], finish: str | None, citations: tuple[Citation, ...]
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if citations and not self._sent_citations:
            self._sent_citations = True
            payload["citations"] = citations_wire(citations)
        if self._include_usage:
            payload["usage"] = None
        return payload

    def text(self, text: str, chunk: GenerationChunk | None) -> dict[str, Any]:
        return self._chunk(self._delta(text), None, chunk.citations if chunk is not None else ())

    def final(self, outcome: Outcome) -> dict[str, Any]:
        delta = self._delta("") if not self._sent_role else {}
        if outcome.tool_calls:
            delta["tool_calls"] = [
                {"index": index, **call} for index, call in enumerate(tool_calls_wire(outcome.tool_calls))
            ]
        return self._chunk(delta, outcome.finish_reason, outcome.citations)

    def usage(self, outcome: Outcome) -> dict[str, Any] | None:
        if not self._include_usage:
            return None
        return {**self._head, "choices": [], "usage": usage_wire(outcome)}
