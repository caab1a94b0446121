"""A model replica deployment: one configured model's engines (the base and its LoRA adapters), built and
started inside the replica's process."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.engine import Engine
from core.errors import ModelNotFoundError
from core.model_config import ModelConfig
from hub.settings import HubSettings
from serving.settings import ServingSettings

logger = logging.getLogger(__name__)


class ModelReplica:
    """Serve deployment class (wrapped by ``serve.deployment`` in the builder).

    The constructor loads the weights, so Serve counts the replica as running only once it can serve.
    Adapters of a vLLM model share the base engine (multi-LoRA); callers name the served id they want.
    """

    async def __init__(self, config: ModelConfig, serving: ServingSettings, hub: HubSettings) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        from hub.store import LocalStore
        from serving.model_engines import build_model_engines

        self._engines: dict[str, Engine] = build_model_engines(config, serving, LocalStore(hub))
        for engine in self._engines.values():
            await engine.start()  # idempotent: adapter views start their shared base
        self._active = 0
        logger.info("model replica of %s ready", ", ".join(self._engines))

    def _engine(self, model_id: str) -> Engine:
        engine = self._engines.get(model_id)
        if engine is None:
            raise ModelNotFoundError(f"this replica serves {sorted(self._engines)}, not {model_id!r}")
        return engine

    def info(self, model_id: str) -> ModelInfo:
        return self._engine(model_id).info

    def active_generations(self) -> int:
        """Generations running in this replica now (a cancelled one stops counting at once)."""
        return self._active

    async def generate(
        self, request: GenerationRequest, model_id: str
    ) -> AsyncGenerator[GenerationChunk, None]:
        engine = self._engine(model_id)
        self._active += 1
        try:
            # aclosing: when the caller cancels, the engine's generator is closed and its slot freed.
            async with aclosing(engine.generate(request)) as stream:
                async for chunk in stream:
                    yield chunk
        finally:
            self._active -= 1

    async def generate_final(self, request: GenerationRequest, model_id: str) -> list[GenerationChunk]:
        """The whole generation in one reply: one message back instead of one per chunk."""
        return [chunk async for chunk in self.generate(request, model_id)]

    async def __del__(self) -> None:
        for engine in self._engines.values():
            await engine.aclose()
