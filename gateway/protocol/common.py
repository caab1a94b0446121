"""Pieces shared by the chat and completions wire models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.chat import ChatMessage, GenerationRequest, SamplingParams
from core.errors import InvalidRequestError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TOKENS_LIMIT = 2**31 - 1


class WireModel(BaseModel):
    # OpenAI adds request fields often; clients send them, so unknown ones are tolerated (and dropped).
    model_config = ConfigDict(extra="ignore")


class StreamOptions(WireModel):
    include_usage: bool | None = None


class SamplingFields(WireModel):
    """Request fields both endpoints share."""

    model: str = Field(min_length=1, max_length=512)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    stop: str | list[str] | None = Field(default=None)
    n: int | None = Field(default=None, ge=1, le=128)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)  # accepted, not applied
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)  # accepted, not applied
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
        )

    def check_supported(self) -> None:
        if self.n not in (None, 1):
            raise InvalidRequestError("Only n=1 is supported.", param="n", code="unsupported_value")
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
        )
