"""A model-free engine with fixed timing: shows the gateway's own overhead and keeps gateway tests fast.

It is a test double (it generates no language), named as one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from core.chat import FinishReason, GenerationChunk, GenerationRequest, ModelInfo
from core.errors import ContextLengthExceededError, InvalidRequestError
from serving.request_tokens import refuse_json_schema
from serving.stop_matcher import StopMatcher


class FixedLatencyEngineDouble:
    """Emits ``tokens`` tokens ("tok0 tok1 …") after ``ttft_s``, then one every ``itl_s`` seconds.

    The prompt is counted as one token per whitespace-separated word, so usage is predictable.
    """

    def __init__(
        self,
        model_id: str = "fixed-latency-double",
        *,
        ttft_s: float = 0.02,
        itl_s: float = 0.005,
        tokens: int = 16,
        context_length: int = 4096,
    ) -> None:
        if tokens < 1 or ttft_s < 0 or itl_s < 0:
            raise InvalidRequestError("the fixed-latency double needs tokens >= 1 and non-negative delays")
        self._model_id = model_id
        self._ttft_s = ttft_s
        self._itl_s = itl_s
        self._tokens = tokens
        self._context_length = context_length
        self._created = int(time.time())
        self.active = 0  # generations in flight, for tests of cancellation

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self._model_id,
            context_length=self._context_length,
            created=self._created,
            engine="fixed-latency double",
            metadata={"engine": "fixed-latency-double"},
        )

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    @staticmethod
    def prompt_tokens(request: GenerationRequest) -> int:
        if request.messages is not None:
            return sum(len(message.content.split()) + 1 for message in request.messages)
        return len((request.prompt or "").split())

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        refuse_json_schema(request, "fixed-latency double")
        prompt_tokens = self.prompt_tokens(request)
        wanted = request.params.max_tokens
        if prompt_tokens >= self._context_length or (
            wanted is not None and prompt_tokens + wanted > self._context_length
        ):
            raise ContextLengthExceededError(
                f"this model's maximum context length is {self._context_length} tokens; the prompt has "
                f"{prompt_tokens} tokens and {wanted or 0} more were requested"
            )
        count = self._tokens if wanted is None else min(wanted, self._tokens)
        finish: FinishReason = "length" if wanted is not None and wanted <= self._tokens else "stop"
        stopper = StopMatcher(request.params.stop)
        self.active += 1
        try:
            await asyncio.sleep(self._ttft_s)
            for index in range(count):
                if index:
                    await asyncio.sleep(self._itl_s)
                text, stopped = stopper.push(f"tok{index}" if index == 0 else f" tok{index}")
                last = stopped or index == count - 1
                if last and not stopped:
                    text += stopper.flush()
                yield GenerationChunk(
                    text=text,
                    finish_reason=("stop" if stopped else finish) if last else None,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=index + 1,
                )
                if stopped:
                    return
        finally:
            self.active -= 1
