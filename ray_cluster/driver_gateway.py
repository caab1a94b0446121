"""``ray.ingress: driver``: the gateway served by the driver process, replicas reached through handles.

Why: on a small machine Serve's HTTP proxy is a hop of its own (HTTP into the proxy actor, then an
actor call into the ingress replica) that costs more than the gateway itself. Here uvicorn runs the
same ``create_app`` in the process that deployed the application, and only the model, embedder and
retriever calls cross into Ray. Each model (and the retriever with its embedders) is its own Serve
application without an HTTP route. What this gives up: Serve does not restart the gateway (the driver
is the process a supervisor such as systemd or Slurm watches), and HTTP enters on this node only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray_cluster.builder import (
    RETRIEVER_DEPLOYMENT,
    build_backends,
    embedder_deployment_name,
    model_deployment_name,
)
from ray_cluster.config import AihubConfig
from ray_cluster.handle_services import handle_services, probe_readiness

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendHandles:
    models: dict[str, DeploymentHandle[Any]]
    embedders: dict[str, DeploymentHandle[Any]]
    retrievers: DeploymentHandle[Any] | None
    applications: tuple[str, ...]  # Serve application names, for shutdown


def deploy_backends(config: AihubConfig) -> BackendHandles:
    """One Serve application per model, one for the retriever and its embedders; no HTTP routes."""
    from ray import serve

    backends = build_backends(config)
    prefix = config.ray.app_name
    logging_config = {"log_level": config.ray.log_level, "enable_access_log": config.ray.access_log}
    names: list[str] = []

    def run(application: Any, deployment: str) -> str:
        name = f"{prefix}-{deployment}"
        serve.run(application, name=name, route_prefix=None, blocking=False, logging_config=logging_config)
        names.append(name)
        return name

    models = {
        model_id: serve.get_deployment_handle(
            model_deployment_name(model_id), run(app, model_deployment_name(model_id))
        )
        for model_id, app in backends.models.items()
    }
    embedders: dict[str, DeploymentHandle[Any]] = {}
    retrievers = None
    if backends.retrievers is not None:
        retriever_app = run(backends.retrievers, RETRIEVER_DEPLOYMENT)
        retrievers = serve.get_deployment_handle(RETRIEVER_DEPLOYMENT, retriever_app)
        embedders = {
            embedder_id: serve.get_deployment_handle(embedder_deployment_name(embedder_id), retriever_app)
            for embedder_id in backends.embedders
        }
    return BackendHandles(models, embedders, retrievers, tuple(names))


async def serve_gateway(config: AihubConfig, handles: BackendHandles, *, host: str, port: int) -> None:
    """uvicorn with the gateway app until SIGINT/SIGTERM, draining first as ``aihub serve`` does."""
    import uvicorn

    from gateway.app import create_app
    from gateway.fast_path import http_protocol
    from gateway.server import UVICORN_GRACE_S, DrainingServer

    backends = await handle_services(config, handles.models, handles.embedders, handles.retrievers)
    app = create_app(config.gateway_settings(), backends.services)
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http=http_protocol(config.gateway),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=UVICORN_GRACE_S,
        ),
        app.state.gateway.drain,
        config.gateway.shutdown_grace_s,
    )
    probe = asyncio.get_running_loop().create_task(probe_readiness(app, backends))
    try:
        await server.serve()
    finally:
        probe.cancel()
