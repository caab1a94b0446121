"""The Engine protocol: what the gateway needs from anything that generates text."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol, runtime_checkable

from core.chat import GenerationChunk, GenerationRequest, ModelInfo


@runtime_checkable
class Engine(Protocol):
    """A text generator serving one model.

    ``generate`` returns an async generator of chunks. Input problems (prompt longer than the context,
    bad parameters) are raised as ``core.errors`` exceptions no later than the first ``__anext__``,
    before any text is produced, so the gateway can still answer with a proper status. Closing the
    iterator early (``aclose()``, or cancelling the task consuming it) cancels the generation and
    frees its batch slot.
    """

    @property
    def info(self) -> ModelInfo: ...

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]: ...

    async def start(self) -> None:
        """Load weights and start background work. Idempotent."""

    async def aclose(self) -> None:
        """Stop background work and release resources."""


@runtime_checkable
class TokenCounter(Protocol):
    """An engine that counts tokens with its model's own tokenizer, in-process and cheaply.

    Pipelines fit retrieved documents into the context with it; without one they estimate.
    """

    def count_tokens(self, text: str) -> int: ...
