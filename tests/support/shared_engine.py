"""A real engine started once per test session and lent to apps that tests build and tear down."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.engine import Engine


class SessionOwnedEngine:
    """Passes every request to ``engine``; ``start``/``aclose`` are the session fixture's, not the app's.

    A gateway app closes its engines when it shuts down; a vLLM engine costs a minute to start, so the
    apps of many tests share one and must leave it running.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def info(self) -> ModelInfo:
        return self.engine.info

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        return self.engine.generate(request)

    async def start(self) -> None:
        """Started by the session fixture."""

    async def aclose(self) -> None:
        """Closed by the session fixture."""
