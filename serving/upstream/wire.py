"""OpenAI wire format at the upstream side: request bodies from engine requests, replies to chunks.

Plain dicts and orjson, as in the gateway's own response building: these run once per request and
once per streamed event, where pydantic models would cost more than the rest of the proxying.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.chat import ChatMessage, FinishReason, GenerationChunk, GenerationRequest, ToolCall
from core.errors import (
    AihubError,
    ContextLengthExceededError,
    EngineUnavailableError,
    InvalidRequestError,
    PayloadTooLargeError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def _message_wire(message: ChatMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        wire["name"] = message.name
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        if not message.content:
            wire["content"] = None
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def response_format_wire(schema: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a schema: any JSON object is ``json_object`` (a strict
    ``json_schema`` of ``{"type": "object"}`` is one OpenAI refuses)."""
    if dict(schema) == {"type": "object"}:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": True}}


def request_body(request: GenerationRequest, model: str, *, stream: bool) -> bytes:
    """The upstream request; streamed ones always ask for usage (stripped again if the client did not)."""
    params = request.params
    body: dict[str, Any] = {"model": model, "temperature": params.temperature, "top_p": params.top_p}
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if params.presence_penalty:
        body["presence_penalty"] = params.presence_penalty
    if params.frequency_penalty:
        body["frequency_penalty"] = params.frequency_penalty
    if params.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in params.logit_bias}
    if request.messages is not None:
        body["messages"] = [_message_wire(m) for m in request.messages]
        if request.tools:
            body["tools"] = list(request.tools)
        if request.json_schema is not None:
            body["response_format"] = response_format_wire(request.json_schema)
    else:
        body["prompt"] = request.prompt or ""
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.session:
        body["user"] = request.session
    return orjson.dumps(body)


def path_for(request: GenerationRequest) -> str:
    return "/chat/completions" if request.messages is not None else "/completions"


def _tool_calls(items: Any) -> tuple[ToolCall, ...]:
    calls = []
    for item in items or ():
        function = item.get("function") or {}
        calls.append(
            ToolCall(item.get("id") or "", function.get("name") or "", function.get("arguments") or "")
        )
    return tuple(calls)


def _usage(payload: Mapping[str, Any]) -> tuple[int, int] | None:
    usage = payload.get("usage")
    if not isinstance(usage, Mapping):
        return None
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def final_chunk(data: bytes, chat: bool) -> GenerationChunk:
    """The one chunk of a non-streamed reply."""
    try:
        payload = orjson.loads(data)
        choice = payload["choices"][0]
        text = (choice["message"].get("content") or "") if chat else (choice.get("text") or "")
        calls = _tool_calls(choice["message"].get("tool_calls")) if chat else ()
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamError("The upstream's reply is not an OpenAI completion.") from None
    prompt_tokens, completion_tokens = _usage(payload) or (0, 0)
    return GenerationChunk(
        text=text,
        finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", "stop"),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        tool_calls=calls,
    )


@dataclass(slots=True)
class StreamState:
    """What a streamed reply has said so far: the pieces of a finished chunk wait for the usage event."""

    chat: bool
    chunks: int = 0
    finish: FinishReason | None = None
    tail: str = ""  # text of the event that carried the finish reason
    usage: tuple[int, int] | None = None
    tool_parts: dict[int, list[str]] = field(default_factory=dict)  # index -> id, name, arguments

    def event(self, data: bytes) -> GenerationChunk | None:
        """A text chunk to pass on now, or None (nothing to say yet, or held for the final chunk)."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError("The upstream sent an event that is not JSON.") from None
        if not isinstance(payload, dict):
            raise UpstreamError("The upstream sent an event that is not an object.")
        if "error" in payload and not payload.get("choices"):
            raise upstream_error_from_event(payload)
        usage = _usage(payload)
        if usage is not None:
            self.usage = usage
        choices = payload.get("choices") or ()
        if not choices:
            return None
        choice = choices[0]
        if self.chat:
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                parts = self.tool_parts.setdefault(int(call.get("index", 0)), ["", "", ""])
                function = call.get("function") or {}
                parts[0] = call.get("id") or parts[0]
                parts[1] += function.get("name") or ""
                parts[2] += function.get("arguments") or ""
        else:
            text = choice.get("text") or ""
        self.chunks += 1 if text else 0
        reason = choice.get("finish_reason")
        if reason:
            self.finish = _FINISH.get(reason, "stop")
            self.tail += text
            return None
        if not text:
            return None
        return GenerationChunk(text=text, completion_tokens=self.chunks)

    def final(self) -> GenerationChunk:
        prompt_tokens, completion_tokens = self.usage or (0, self.chunks)
        calls = tuple(ToolCall(p[0], p[1], p[2]) for _, p in sorted(self.tool_parts.items()))
        return GenerationChunk(
            text=self.tail,
            finish_reason=self.finish or "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tool_calls=calls,
        )


def _error_fields(data: bytes) -> tuple[str, str | None, str | None]:
    """Message, param and code of an error body: OpenAI's ``{"error": {…}}``, vLLM's or FastAPI's."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data[:300].decode("utf-8", "replace").strip(), None, None
    if isinstance(payload, dict):
        inner = payload.get("error", payload)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or ""
            code = inner.get("code")
            param = inner.get("param")
            return (
                str(message)[:2000],
                param if isinstance(param, str) else None,
                code if isinstance(code, str) else None,
            )
        if isinstance(inner, str):
            return inner[:2000], None, None
    return str(payload)[:300], None, None


def upstream_error_from_event(payload: Mapping[str, Any]) -> AihubError:
    message, _, code = _error_fields(orjson.dumps(payload))
    return UpstreamError(f"The upstream failed mid-stream: {message}", code=code or "upstream_error")


def error_for_status(status: int, data: bytes, upstream: str) -> AihubError:
    """The honest error for an upstream's non-200 reply: the client's own mistakes keep their 4xx."""
    message, param, code = _error_fields(data)
    if status in (400, 422):
        lowered = message.lower()
        if "context length" in lowered or "maximum context" in lowered or code == "context_length_exceeded":
            return ContextLengthExceededError(message, param=param or "messages")
        return InvalidRequestError(message or "The upstream refused the request.", param=param, code=code)
    if status == 413:
        return PayloadTooLargeError(message or "The request is too large for the upstream.")
    if status == 429:
        return RateLimitError(message or "The upstream is rate limiting requests.", code=code)
    if status in (401, 403):
        return UpstreamError(f"The upstream {upstream} refused aihub's credentials ({status}).")
    if status == 404:
        return UpstreamError(f"The upstream {upstream} does not serve this model: {message}")
    if status in (408, 504):
        return UpstreamTimeoutError(f"The upstream {upstream} timed out ({status}).")
    if status == 503:
        return EngineUnavailableError(f"The upstream {upstream} is unavailable: {message}")
    return UpstreamError(f"The upstream {upstream} failed ({status}): {message}")


def is_failure(status: int) -> bool:
    """Replies that say the upstream (not the request) is in trouble: count them, try another."""
    return status >= 500 or status in (401, 403, 404, 408, 429)
