"""``POST /v1/completions`` (legacy text completions) request model."""

from __future__ import annotations

from pydantic import Field

from core.chat import GenerationRequest
from core.errors import InvalidRequestError
from gateway.protocol.common import MAX_TOKENS_LIMIT, SamplingFields

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
