"""A model replica deployment: one engine, built and started inside the replica's process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.engine import Engine
from core.errors import InvalidSpecError
from hub.settings import HubSettings
from ray_cluster.config import ModelSpec
from serving.settings import ServingSettings

logger = logging.getLogger(__name__)


def build_model_engine(spec: ModelSpec, serving: ServingSettings, hub: HubSettings) -> Engine:
    """The engine ``spec`` names; weights come from the hub (a shared folder on a cluster)."""
    if spec.engine == "fixed-latency":
        from serving.fixed_latency_engine import FixedLatencyEngineDouble

        return FixedLatencyEngineDouble(model_id=spec.id, **spec.options)
    if spec.ref is None:
        raise InvalidSpecError(f"model {spec.id!r}: engine {spec.engine!r} needs a hub reference `ref`")
    from hub.store import LocalStore
    from serving.factory import build_engine

    store = LocalStore(hub)
    artifact = store.resolve(spec.ref)
    return build_engine(
        spec.id, store.materialize(artifact.pinned_ref), serving, kind=spec.engine, digest=artifact.digest
    )


class ModelReplica:
    """Serve deployment class (wrapped by ``serve.deployment`` in the builder).

    The constructor loads the weights, so Serve counts the replica as running only once it can serve.
    """

    async def __init__(self, spec: ModelSpec, serving: ServingSettings, hub: HubSettings) -> None:  # type: ignore[misc]  # Serve awaits async constructors
        self._engine = build_model_engine(spec, serving, hub)
        await self._engine.start()
        self._active = 0
        logger.info("model replica of %s ready", spec.id)

    def info(self) -> ModelInfo:
        return self._engine.info

    def active_generations(self) -> int:
        """Generations running in this replica now (a cancelled one stops counting at once)."""
        return self._active

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self._active += 1
        try:
            # aclosing: when the caller cancels, the engine's generator is closed and its slot freed.
            async with aclosing(self._engine.generate(request)) as stream:  # type: ignore[type-var]
                async for chunk in stream:
                    yield chunk
        finally:
            self._active -= 1

    async def generate_final(self, request: GenerationRequest) -> list[GenerationChunk]:
        """The whole generation in one reply: one message back instead of one per chunk."""
        return [chunk async for chunk in self.generate(request)]

    async def __del__(self) -> None:
        await self._engine.aclose()
