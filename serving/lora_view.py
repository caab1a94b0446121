"""One LoRA adapter of a multi-LoRA engine, served as a model of its own.

vLLM keeps several adapters on one base model and picks one per request; the gateway sees engines
through ``core.engine.Engine``, whose ``generate`` takes no adapter. A ``LoraAdapterView`` is that
Engine for one adapter: its own id and digest, every request forwarded to the shared base engine with
the adapter's name.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Protocol

from core.chat import GenerationChunk, GenerationRequest, ModelInfo


class MultiLoraEngine(Protocol):
    """An engine that serves several adapters on one base (``serving.vllm_engine.VllmEngine``)."""

    @property
    def info(self) -> ModelInfo: ...

    def generate(
        self, request: GenerationRequest, adapter: str | None = None
    ) -> AsyncGenerator[GenerationChunk, None]: ...

    def count_tokens(self, text: str) -> int: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class LoraAdapterView:
    def __init__(self, base: MultiLoraEngine, model_id: str, adapter: str, *, digest: str | None) -> None:
        self._base = base
        self._model_id = model_id
        self._adapter = adapter  # the name the base engine knows the adapter by
        self._digest = digest  # the adapter artifact's digest

    @property
    def info(self) -> ModelInfo:
        base = self._base.info
        return replace(
            base,
            id=self._model_id,
            digest=self._digest,
            metadata={**base.metadata, "adapter": self._adapter, "base": base.id},
        )

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        return self._base.generate(request, adapter=self._adapter)

    def count_tokens(self, text: str) -> int:
        return self._base.count_tokens(text)  # adapters share the base model's tokenizer

    async def start(self) -> None:
        await self._base.start()  # idempotent: every view and the base itself may ask

    async def aclose(self) -> None:
        """Nothing of its own to release: the base engine is served (and closed) under its own id."""
