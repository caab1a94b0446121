"""Pieces shared by the chat and completions wire models."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.chat import ChatMessage, Citation, GenerationRequest, SamplingParams, ToolCall
from core.errors import InvalidRequestError
from gateway.outcome import Outcome

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TOKENS_LIMIT = 2**31 - 1


class WireModel(BaseModel):
    # OpenAI adds request fields often; clients send them, so unknown ones are tolerated (and dropped).
    model_config = ConfigDict(extra="ignore")


class StrictWireModel(WireModel):
    """An OpenAI request body: types are strict, as OpenAI's are (``"max_tokens": "5"`` and
    ``"temperature": "0.7"`` are 400s, not coerced; integers stay acceptable where numbers are)."""

    model_config = ConfigDict(extra="ignore", strict=True)


class StreamOptions(StrictWireModel):
    include_usage: bool | None = None


class SamplingFields(StrictWireModel):
    """Request fields both endpoints share."""

    model: str = Field(min_length=1, max_length=512)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    stop: str | list[str] | None = Field(default=None)
    n: int | None = Field(default=None, ge=1, le=128)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    # Token id (as a JSON object key) -> bias in [-100, 100]; ids beyond the vocabulary are the
    # engine's 400 (only it knows the vocabulary).
    logit_bias: dict[str, float] | None = Field(default=None, max_length=1024)
    user: str | None = None
    aihub: dict[str, Any] | None = None  # aihub extension: options for pipelines and agents

    def generation_request(
        self,
        request_id: str,
        params: SamplingParams,
        *,
        messages: tuple[ChatMessage, ...] | None = None,
        prompt: str | None = None,
        tools: tuple[Mapping[str, Any], ...] = (),
        json_schema: Mapping[str, Any] | None = None,
    ) -> GenerationRequest:
        return GenerationRequest(
            request_id,
            params,
            messages=messages,
            prompt=prompt,
            tools=tools,
            final_only=not self.stream,
            json_schema=json_schema,
            options=self.aihub or {},
            session=self.user,
        )

    def to_generation(self, request_id: str) -> GenerationRequest:
        """The engine request this body asks for (each endpoint's model defines it)."""
        raise NotImplementedError

    def check_supported(self) -> None:
        if self.stream_options is not None and not self.stream:
            raise InvalidRequestError(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        if self.n not in (None, 1):
            raise InvalidRequestError("Only n=1 is supported.", param="n", code="unsupported_value")
        for token, bias in (self.logit_bias or {}).items():
            if not token.isascii() or not token.isdigit() or len(token) > 9:
                raise InvalidRequestError(
                    f"logit_bias keys must be token ids; {token[:40]!r} is not.",
                    param="logit_bias",
                    code="invalid_value",
                )
            if not -100.0 <= bias <= 100.0:
                raise InvalidRequestError(
                    f"logit_bias values must be in [-100, 100]; token {token} has {bias}.",
                    param="logit_bias",
                    code="invalid_value",
                )
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise InvalidRequestError(
                "'stop' may hold at most 4 sequences.", param="stop", code="invalid_value"
            )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def sampling(self, max_tokens: int | None) -> SamplingParams:
        if self.stop is None:
            stop: tuple[str, ...] = ()
        elif isinstance(self.stop, str):
            stop = (self.stop,)
        else:
            stop = tuple(self.stop)
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            seed=self.seed,
            stop=tuple(s for s in stop if s),
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            logit_bias=tuple(sorted((int(k), float(v)) for k, v in (self.logit_bias or {}).items())),
        )


# --- response building blocks ------------------------------------------------------------------------
# Built as plain dicts (serialized by orjson): these run once per streamed chunk, where pydantic
# models would cost more than the rest of the gateway's per-chunk work.


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """The fields every response object and chunk of one request repeats."""

    id: str
    created: int
    model: str

    def fields(self, object_type: str) -> dict[str, Any]:
        return {"id": self.id, "object": object_type, "created": self.created, "model": self.model}


def usage_wire(outcome: Outcome) -> dict[str, int]:
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
    }


def tool_calls_wire(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    """OpenAI's ``message.tool_calls`` (streamed deltas add ``index`` per item)."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def citations_wire(citations: tuple[Citation, ...]) -> list[dict[str, Any]]:
    """aihub's ``citations`` extension: the sources of a RAG or agent answer."""
    return [
        {
            "doc_id": c.doc_id,
            "chunk_id": c.chunk_id,
            "source": c.source,
            "title": c.title,
            "score": c.score,
            "snippet": c.snippet,
        }
        for c in citations
    ]
