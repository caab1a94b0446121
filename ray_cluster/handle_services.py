"""The gateway's services over Ray Serve handles, and the probe that keeps ``/ready`` honest.

Shared by the two places a gateway runs in Ray mode: the ingress deployment behind Serve's HTTP proxy
and the gateway served by the driver process itself (``ray.ingress: driver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import AihubError
from core.responses import ResponseStore
from gateway.services import GatewayServices
from ray_cluster.config import AihubConfig
from ray_cluster.embedder_proxy import EmbedderProxy, fetch_embedder_info
from ray_cluster.engine_proxy import EngineProxy
from ray_cluster.index_proxy import IndexProviderProxy

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve.handle import DeploymentHandle

logger = logging.getLogger(__name__)

READY_PROBE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class HandleServices:
    services: GatewayServices
    engines: Mapping[str, EngineProxy]
    indexes: IndexProviderProxy | None
    # Set when a request found a model replica dead: the probe reports not-ready at once.
    replica_lost: asyncio.Event


async def handle_services(
    config: AihubConfig,
    models: Mapping[str, DeploymentHandle[Any]],
    embedders: Mapping[str, DeploymentHandle[Any]],
    retrievers: DeploymentHandle[Any] | None,
) -> HandleServices:
    from hub.store import LocalStore

    replica_lost = asyncio.Event()
    served = {model.id: model.served_ids() for model in config.models}
    engines = {
        served_id: EngineProxy(
            served_id,
            handle,
            first_chunk_timeout_s=config.ray.first_chunk_timeout_s,
            on_unavailable=replica_lost.set,
        )
        for model_id, handle in models.items()
        for served_id in served.get(model_id, (model_id,))
    }
    embedder_proxies = {
        embedder_id: EmbedderProxy(embedder_id, handle, await fetch_embedder_info(handle, embedder_id))
        for embedder_id, handle in embedders.items()
    }
    default_embedder = config.default_embedder if config.default_embedder in embedder_proxies else None
    indexes = IndexProviderProxy(retrievers) if retrievers is not None else None
    if indexes is not None:
        await indexes.refresh()
    tenancy = None
    if config.tenancy.enabled:  # the same keys, limits and ledger as embedded mode
        from tenancy.services import build_tenancy

        tenancy = build_tenancy(
            config.tenancy,
            config.app.home,
            static_keys=config.gateway.api_keys,
            admin_keys=config.gateway.admin_keys,
        )
    services = GatewayServices(
        engines=engines,
        embedders=embedder_proxies,
        default_embedder=default_embedder,
        indexes=indexes,
        store=LocalStore(config.hub),
        authenticator=tenancy.authenticator if tenancy else None,
        usage=tenancy.usage if tenancy else None,
        key_manager=tenancy.key_manager if tenancy else None,
        usage_reader=tenancy.usage_reader if tenancy else None,
        limiter=tenancy.limiter if tenancy else None,
        responses=tenancy.responses if tenancy else _response_store(config),
    )
    return HandleServices(services, engines, indexes, replica_lost)


def _response_store(config: AihubConfig) -> ResponseStore:
    """Stored /v1/responses without tenancy: the gateway's SQLite file under the home."""
    from tenancy.response_store import open_response_store

    return open_response_store(config.app.home, config.tenancy.response_row_max_bytes)


async def probe_readiness(app: FastAPI, backends: HandleServices) -> None:
    """Forever: ``/ready`` turns 503 while a model has no replica answering, 200 once one does.

    A request that finds a replica dead turns it 503 at once; a probe only says ready again when its
    whole round passed without such a loss (Serve may restart a replica before a queued probe call
    would time out, which alone would hide the outage).
    """
    was_ready: bool | None = None
    started = False
    lost = backends.replica_lost
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lost.wait(), timeout=READY_PROBE_INTERVAL_S)
        state = app.state.gateway
        started = started or state.ready
        if not started:
            continue  # the lifespan has not started the engines yet
        if lost.is_set():
            lost.clear()
            state.ready = False
        answers = await asyncio.gather(*(engine.ready() for engine in backends.engines.values()))
        if backends.indexes is not None:
            with contextlib.suppress(AihubError):  # keeps the last listing while the workers restart
                await backends.indexes.refresh()
        ready = all(answers) and not lost.is_set()
        state.ready = ready
        if ready != was_ready:
            down = [mid for mid, ok in zip(backends.engines, answers, strict=True) if not ok]
            logger.log(
                logging.INFO if ready else logging.WARNING,
                "gateway %s%s",
                "ready" if ready else "not ready, no replica answers for: ",
                "" if ready else ", ".join(down),
            )
            was_ready = ready
