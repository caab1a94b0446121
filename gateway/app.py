"""The app factory: ``create_app(settings, services)``, called by a composition root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry.trace import Tracer
from pydantic import BaseModel
from starlette.middleware import Middleware

from core.engine import Engine, ReplicaPool
from gateway.auth import ApiKeyMiddleware
from gateway.body_limit import BodyLimitMiddleware
from gateway.catalog import DirectoryResolver, ModelCatalog, Resolver
from gateway.composition import CompositionResolver
from gateway.drain import DrainMiddleware
from gateway.errors import UnexpectedErrorMiddleware, install_error_handlers
from gateway.fast_path.hot_routes import HotRouteMiddleware, PathPattern
from gateway.metrics import GatewayMetrics, MetricsMiddleware, ProjectCounters
from gateway.pool_metrics import ReplicaPoolCollector
from gateway.protocol.chat import ChatCompletionRequest
from gateway.protocol.completions import CompletionRequest
from gateway.protocol.embeddings import EmbeddingRequest
from gateway.protocol.responses import CreateResponseRequest
from gateway.protocol.vector_stores import VectorStoreSearchRequest
from gateway.request_body import component_schemas
from gateway.routers import (
    admin,
    chat,
    completions,
    console,
    embeddings,
    files,
    health,
    keys,
    models,
    responses,
    usage,
    vector_store_crud,
    vector_store_files,
    vector_stores,
)
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from gateway.tenant_auth import TenancyMiddleware
from gateway.tracing import TracingMiddleware, setup_tracing

logger = logging.getLogger(__name__)


def _resolvers(services: GatewayServices, tracer: Tracer, tag_ttl_s: float) -> list[Resolver]:
    """The composition root's resolvers; else ``rag/`` and ``agent/`` ids from the hub, if there is one."""
    if services.resolvers:
        return list(services.resolvers)
    if services.store is not None:
        return [CompositionResolver(services, tracer=tracer, tag_ttl_s=tag_ttl_s)]
    return []


def _unique_engines(services: GatewayServices) -> list[Engine]:
    seen: dict[int, Engine] = {}
    for engine in services.engines.values():
        seen.setdefault(id(engine), engine)
    return list(seen.values())


def _hot_routes() -> Middleware:
    """The fast path: the hottest handlers, called past FastAPI's router."""
    routes = {
        ("POST", "/v1/chat/completions"): chat.create_chat_completion,
        ("POST", "/v1/completions"): completions.create_completion,
        ("POST", "/v1/responses"): responses.create_response,
    }
    search = PathPattern(
        "POST", "/v1/vector_stores/", "/search", "vector_store_id", vector_stores.search_vector_store_hot
    )
    return Middleware(HotRouteMiddleware, routes=routes, patterns=[search])


def create_app(settings: GatewaySettings, services: GatewayServices) -> FastAPI:
    metrics = GatewayMetrics(settings.latency_buckets)
    metrics.registry.register(ReplicaPoolCollector(services.pools))
    tracer, tracer_provider = setup_tracing(settings.tracing)
    resolvers: list[Resolver] = [DirectoryResolver(d) for d in services.directories]
    resolvers += _resolvers(services, tracer, settings.composition_tag_ttl_s)
    catalog = ModelCatalog.for_engines(
        services.engines, settings.model_aliases, resolvers, embedding_models=services.embedders
    )
    state = GatewayState(settings=settings, services=services, catalog=catalog, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[Engine | ReplicaPool] = []
        try:
            for engine in _unique_engines(services):
                await engine.start()
                started.append(engine)
            for pool in services.pools:  # engines on a pool started it already; start is idempotent
                await pool.start()
                started.append(pool)
            if services.vector_stores is not None:  # resumes ingestion jobs a stopped gateway left
                services.vector_stores.start()
            state.ready = True
            logger.info("gateway ready: %d model(s)", len(services.engines))
            yield
        finally:
            state.ready = False
            if services.vector_stores is not None:
                services.vector_stores.close()
            for item in reversed(started):
                try:
                    await item.aclose()
                except Exception:
                    logger.exception("closing %s failed", item)
            if services.limiter is not None:
                try:
                    await services.limiter.aclose()
                except Exception:
                    logger.exception("closing the rate limiter failed")
            if services.usage is not None:
                try:  # the rows of every answered request reach the ledger before the process ends
                    await services.usage.aclose()
                except Exception:
                    logger.exception("flushing the usage ledger failed")
            if tracer_provider is not None:
                tracer_provider.shutdown()  # flushes the batch exporter

    # Pure-ASGI middleware only, outermost first.
    middleware = [
        Middleware(TracingMiddleware, tracer=tracer),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(UnexpectedErrorMiddleware),
        # Before auth: while the server shuts down, new requests are refused without a key lookup.
        Middleware(DrainMiddleware, drain=state.drain, open_paths=settings.open_paths),
    ]
    # The console's pages hold no data: a browser must load them before it can send a key.
    open_paths = (*settings.open_paths, *(console.open_paths() if settings.console else ()))
    if services.authenticator is not None:
        counters = ProjectCounters(metrics.registry)
        middleware.append(
            Middleware(
                TenancyMiddleware,
                authenticator=services.authenticator,
                usage=services.usage,
                open_paths=open_paths,
                counters=counters,
                limiter=services.limiter,
            )
        )
    elif settings.api_keys:
        # An admin key passes too; the admin routes then check for one themselves.
        allowed = [*settings.api_keys, *settings.admin_keys]
        middleware.append(Middleware(ApiKeyMiddleware, keys=allowed, open_paths=open_paths))
    # An upload's multipart body holds the file and a few fields: a margin above the file limit.
    upload_limit = (("/v1/files", settings.max_file_bytes + 64 * 1024),)
    middleware.append(
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes, path_limits=upload_limit)
    )
    if settings.fast_paths:
        middleware.append(_hot_routes())

    app = FastAPI(
        title="aihub",
        summary="OpenAI-compatible endpoint for models, RAG pipelines and agents",
        version="0.1.0",
        lifespan=lifespan,
        middleware=middleware,
    )
    app.state.gateway = state
    app.state.services = services
    install_error_handlers(app)
    for router in (
        chat.router,
        completions.router,
        models.router,
        health.router,
        embeddings.router,
        vector_stores.router,
        vector_store_crud.router,
        vector_store_files.router,
        files.router,
        admin.router,
        keys.router,
        usage.router,
        responses.router,
    ):
        app.include_router(router)
    if settings.console:
        app.include_router(console.router)

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            bodies: list[type[BaseModel]] = [
                ChatCompletionRequest,
                CompletionRequest,
                CreateResponseRequest,
                EmbeddingRequest,
                VectorStoreSearchRequest,
            ]
            components.update(component_schemas(bodies))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app
