"""``POST /v1/completions`` (legacy text completions): the request model and the response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from core.chat import GenerationChunk, GenerationRequest
from core.errors import InvalidRequestError
from gateway.outcome import Outcome
from gateway.protocol.common import MAX_TOKENS_LIMIT, ResponseHead, SamplingFields, usage_wire

OPENAI_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint, kept for compatibility


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(default=OPENAI_DEFAULT_MAX_TOKENS, ge=1, le=MAX_TOKENS_LIMIT)
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1, le=20)
    logprobs: int | None = Field(default=None, ge=0, le=5)
    logit_bias: dict[str, float] | None = None  # accepted, not applied

    def prompt_text(self) -> str:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1 or not isinstance(prompt[0], str):
                raise InvalidRequestError(
                    "Only a single text prompt is supported (no batches, no token ids).",
                    param="prompt",
                    code="unsupported_value",
                )
            prompt = prompt[0]
        assert isinstance(prompt, str)
        return prompt

    def to_generation(self, request_id: str) -> GenerationRequest:
        self.check_supported()
        if self.suffix:
            raise InvalidRequestError("'suffix' is not supported.", param="suffix", code="unsupported_value")
        if self.best_of not in (None, 1):
            raise InvalidRequestError(
                "Only best_of=1 is supported.", param="best_of", code="unsupported_value"
            )
        if self.logprobs:
            raise InvalidRequestError(
                "logprobs are not supported.", param="logprobs", code="unsupported_value"
            )
        return self.generation_request(request_id, self.sampling(self.max_tokens), prompt=self.prompt_text())


def _finish(reason: str | None) -> str | None:
    # This endpoint's schema knows no `tool_calls`.
    return "stop" if reason == "tool_calls" else reason


def _choice(text: str, finish: str | None) -> dict[str, Any]:
    return {"index": 0, "text": text, "logprobs": None, "finish_reason": _finish(finish)}


def completion(head: ResponseHead, outcome: Outcome, echo: str = "") -> dict[str, Any]:
    """A ``text_completion`` object (OpenAI's CreateCompletionResponse)."""
    return {
        **head.fields("text_completion"),
        "choices": [_choice(echo + outcome.text, outcome.finish_reason)],
        "usage": usage_wire(outcome),
    }


class CompletionChunks:
    """The payloads of one streamed completion. Unlike chat, no ``"usage": null`` on the text chunks:
    this endpoint's schema does not allow it."""

    def __init__(self, head: ResponseHead, include_usage: bool) -> None:
        self._head = head.fields("text_completion")
        self._include_usage = include_usage

    def text(self, text: str, chunk: GenerationChunk | None) -> dict[str, Any]:
        return {**self._head, "choices": [_choice(text, None)]}

    def final(self, outcome: Outcome) -> dict[str, Any]:
        return {**self._head, "choices": [_choice("", outcome.finish_reason)]}

    def usage(self, outcome: Outcome) -> dict[str, Any] | None:
        if not self._include_usage:
            return None
        return {**self._head, "choices": [], "usage": usage_wire(outcome)}
