"""The Engine protocol over a Ray Serve deployment handle of a model replica.

Chunks stream through a generator handle (``options(stream=True)``) one by one as the replica yields
them, never buffered. Closing the iterator (or cancelling the task consuming it) cancels the remote
generator, which frees the engine's batch slot in the replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, cast

from core.chat import GenerationChunk, GenerationRequest, ModelInfo
from core.errors import EngineUnavailableError
from ray_cluster.ray_errors import map_ray_error

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

logger = logging.getLogger(__name__)


class EngineProxy:
    """An ``Engine`` whose ``generate`` runs in a ``ModelReplica`` deployment, under served id ``model_id``
    (the replica's base model or one of its adapters)."""

    def __init__(
        self,
        model_id: str,
        handle: DeploymentHandle[Any],
        *,
        info: ModelInfo | None = None,
        first_chunk_timeout_s: float = 60.0,
        on_unavailable: Callable[[], None] | None = None,
    ) -> None:
        self._model_id = model_id
        # Called when a request finds no live replica (one died under it): readiness need not wait
        # for its next probe, which may only time out after Serve has already started a new replica.
        self._on_unavailable = on_unavailable
        self._handle = handle
        self._stream_handle = handle.options(stream=True)
        self._info = info or ModelInfo(id=model_id, context_length=0)
        self._first_chunk_timeout_s = first_chunk_timeout_s

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def handle(self) -> DeploymentHandle[Any]:
        return self._handle

    async def start(self) -> None:
        """Fetch the model's info from a replica (the replica loaded its engine before taking calls)."""
        try:
            self._info = await self._handle.info.remote(self._model_id)
        except Exception as exc:
            raise map_ray_error(exc, f"model {self._model_id}") from exc

    async def aclose(self) -> None:
        """Nothing to release here: the replicas own their engines and Serve stops them."""

    async def ready(self) -> bool:
        """Whether a replica answers now (for readiness probes)."""
        try:
            await asyncio.wait_for(self._handle.info.remote(self._model_id), timeout=2.0)
        except Exception:
            return False
        return True

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationChunk, None]:
        if request.final_only:
            for chunk in await self._generate_final(request):
                yield chunk
            return
        call = self._stream_handle.generate.remote(request, self._model_id)
        stream = cast("DeploymentResponseGenerator[GenerationChunk]", call)
        finished = False
        try:
            try:
                # Bounded: a request queued behind dead replicas answers 503 instead of hanging.
                first = await asyncio.wait_for(anext(stream), timeout=self._first_chunk_timeout_s)
            except TimeoutError:
                raise EngineUnavailableError(
                    f"model {self._model_id} did not start answering within {self._first_chunk_timeout_s} s"
                ) from None
            except StopAsyncIteration:
                finished = True
                return
            finished = first.finish_reason is not None
            yield first
            async for chunk in stream:
                finished = chunk.finish_reason is not None
                yield chunk
            finished = True
        except Exception as exc:
            mapped = self._mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            if not finished:  # the consumer went away (or the call failed): stop the remote generator
                stream.cancel()

    async def _generate_final(self, request: GenerationRequest) -> list[GenerationChunk]:
        """One unary call for a caller that wants the whole result: a streamed reply costs Ray one
        message per chunk, about half a millisecond each on a small machine."""
        response = self._handle.generate_final.remote(request, self._model_id)
        try:
            chunks: list[GenerationChunk] = await response
        except asyncio.CancelledError:
            response.cancel()  # the client went away: free the replica's batch slot
            raise
        except Exception as exc:
            mapped = self._mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return chunks

    def _mapped(self, exc: Exception) -> BaseException:
        mapped = map_ray_error(exc, f"model {self._model_id}")
        if isinstance(mapped, EngineUnavailableError) and self._on_unavailable is not None:
            self._on_unavailable()
        return mapped
