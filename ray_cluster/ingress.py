"""The gateway ingress deployment: the same ``gateway.app.create_app``, over handle-backed services.

Engines, embedders and indices are proxies to their own deployments, so the HTTP layer is identical
to the embedded mode. A background probe keeps ``/ready`` honest: it turns 503 while a model has no
replica answering (killed, restarting) and 200 again once one does; ``/health`` stays 200 throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ray import serve

from core.errors import AihubError
from gateway.services import GatewayServices
from ray_cluster.config import ClusterConfig
from ray_cluster.embedder_proxy import EmbedderProxy, fetch_embedder_info
from ray_cluster.engine_proxy import EngineProxy
from ray_cluster.index_proxy import IndexProviderProxy

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve.handle import DeploymentHandle

logger = logging.getLogger(__name__)

READY_PROBE_INTERVAL_S = 1.0


@serve.ingress()
class GatewayIngress:
    async def __init__(  # type: ignore[misc]  # Serve awaits async constructors
        self,
        config: ClusterConfig,
        models: Mapping[str, DeploymentHandle[Any]],
        embedders: Mapping[str, DeploymentHandle[Any]],
        retrievers: DeploymentHandle[Any] | None,
    ) -> None:
        from hub.store import LocalStore

        self._config = config
        self._engines = {
            model_id: EngineProxy(model_id, handle, first_chunk_timeout_s=config.ray.first_chunk_timeout_s)
            for model_id, handle in models.items()
        }
        embedder_proxies = {
            embedder_id: EmbedderProxy(embedder_id, handle, await fetch_embedder_info(handle, embedder_id))
            for embedder_id, handle in embedders.items()
        }
        default_embedder = config.default_embedder if config.default_embedder in embedder_proxies else None
        self._indexes = IndexProviderProxy(retrievers) if retrievers is not None else None
        if self._indexes is not None:
            await self._indexes.refresh()
        self._services = GatewayServices(
            engines=self._engines,
            embedders=embedder_proxies,
            default_embedder=default_embedder,
            indexes=self._indexes,
            store=LocalStore(config.hub),
        )
        self._app: FastAPI | None = None
        self._probe: asyncio.Task[None] | None = None

    def __serve_build_asgi_app__(self) -> FastAPI:
        from gateway.app import create_app

        self._app = create_app(self._config.gateway, self._services)
        self._probe = asyncio.get_running_loop().create_task(self._probe_readiness())
        return self._app

    async def _probe_readiness(self) -> None:
        app = self._app
        assert app is not None
        was_ready: bool | None = None
        started = False
        while True:
            await asyncio.sleep(READY_PROBE_INTERVAL_S)
            state = app.state.gateway
            started = started or state.ready
            if not started:
                continue  # the lifespan has not started the engines yet
            answers = await asyncio.gather(*(engine.ready() for engine in self._engines.values()))
            if self._indexes is not None:
                with contextlib.suppress(AihubError):  # keeps the last listing while the workers restart
                    await self._indexes.refresh()
            ready = all(answers)
            state.ready = ready
            if ready != was_ready:
                down = [mid for mid, ok in zip(self._engines, answers, strict=True) if not ok]
                logger.log(
                    logging.INFO if ready else logging.WARNING,
                    "gateway %s%s",
                    "ready" if ready else "not ready, no replica answers for: ",
                    "" if ready else ", ".join(down),
                )
                was_ready = ready

    async def __del__(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
