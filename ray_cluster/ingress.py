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

from ray_cluster.config import AihubConfig
from ray_cluster.handle_services import HandleServices, handle_services, probe_readiness

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve.handle import DeploymentHandle

logger = logging.getLogger(__name__)


@serve.ingress()
class GatewayIngress:
    async def __init__(  # type: ignore[misc]  # Serve awaits async constructors
        self,
        config: AihubConfig,
        models: Mapping[str, DeploymentHandle[Any]],
        embedders: Mapping[str, DeploymentHandle[Any]],
        retrievers: DeploymentHandle[Any] | None,
    ) -> None:
        self._config = config
        self._backends: HandleServices = await handle_services(config, models, embedders, retrievers)
        self._app: FastAPI | None = None
        self._probe: asyncio.Task[None] | None = None

    def __serve_build_asgi_app__(self) -> FastAPI:
        from gateway.app import create_app

        self._app = create_app(self._config.gateway_settings(), self._backends.services)
        self._probe = asyncio.get_running_loop().create_task(probe_readiness(self._app, self._backends))
        return self._app

    async def __del__(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
