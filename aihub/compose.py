"""The embedded composition root: builds every package's backends from the one config shape
(``ray_cluster.config.AihubConfig``) and wires the gateway."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rich.console import Console

from core.embedder import Embedder
from core.engine import Engine, EngineDirectory, HealthReporting, ReplicaPool
from core.errors import InvalidSpecError
from core.model_config import ModelConfig
from core.responses import ResponseStore
from core.store import ArtifactStore
from gateway.services import GatewayServices
from hub.store import LocalStore
from ray_cluster.config import AihubConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)


@runtime_checkable
class HasPool(Protocol):
    """An engine, embedder or directory served by upstreams: the gateway reports and manages its pool."""

    pool: ReplicaPool


def open_store(settings: AihubConfig) -> LocalStore:
    return LocalStore(settings.hub)


def build_engine(config: ModelConfig, settings: AihubConfig, store: ArtifactStore) -> Engine:
    """The engine of the base model alone (its adapters, if any, are left out)."""
    return build_engines(config.model_copy(update={"adapters": ()}), settings, store)[config.id]


def build_engines(config: ModelConfig, settings: AihubConfig, store: ArtifactStore) -> dict[str, Engine]:
    """The model's engine and one per adapter, keyed by served model id."""
    from serving.model_engines import build_model_engines

    return build_model_engines(config, settings.serving, store)


def build_embedder(config: ModelConfig, settings: AihubConfig, store: ArtifactStore) -> Embedder:
    from retrievers.factory import build_embedder as build_retriever_embedder

    if config.engine == "openai":
        from serving.upstream.build import build_upstream_embedder

        return build_upstream_embedder(config, settings.serving)
    if config.ref is None:
        raise InvalidSpecError(f"embedder {config.id!r} needs a hub reference `ref`")
    artifact = store.resolve(config.ref)
    return build_retriever_embedder(
        config.id, store.materialize(artifact.pinned_ref), settings.retrievers, digest=artifact.digest
    )


def build_services(settings: AihubConfig, store: ArtifactStore) -> GatewayServices:
    from retrievers.index_provider import HubIndexProvider

    engines: dict[str, Engine] = {}
    directories: list[EngineDirectory] = []
    for config in settings.app.models:
        if config.federation_prefix is not None:
            from serving.upstream.build import build_federation

            directories.append(build_federation(config, settings.serving))
            continue
        for model_id, engine in build_engines(config, settings, store).items():
            if model_id in engines:
                raise InvalidSpecError(f"model id {model_id!r} is served twice; give each model its own id")
            engines[model_id] = engine
    embedders = {config.id: build_embedder(config, settings, store) for config in settings.app.embedders}
    default_embedder = settings.app.default_embedder if settings.app.default_embedder in embedders else None
    # BM25-only indices need no embedder, so the provider is always there.
    indexes = HubIndexProvider(store, embedders, settings.retrievers)
    pools = [p for p in (*engines.values(), *embedders.values(), *directories) if isinstance(p, HasPool)]
    tenancy = None
    if settings.tenancy.enabled:
        from tenancy.services import build_tenancy

        tenancy = build_tenancy(
            settings.tenancy,
            settings.app.home,
            static_keys=settings.gateway.api_keys,
            admin_keys=settings.gateway.admin_keys,
        )
    files, vector_stores = None, None
    if isinstance(store, LocalStore):
        from aihub.file_services import build_file_services, gateway_database

        database = tenancy.database if tenancy and tenancy.database else gateway_database(settings)
        files, vector_stores = build_file_services(settings, store, embedders, default_embedder, database)
        indexes.vector_stores = vector_stores  # vs_… ids resolve to the store's current index
    return GatewayServices(
        engines=engines,
        embedders=embedders,
        default_embedder=default_embedder,
        indexes=indexes,
        store=store,
        pools=list({id(p.pool): p.pool for p in pools}.values()),
        health={model_id: e for model_id, e in engines.items() if isinstance(e, HealthReporting)},
        directories=directories,
        authenticator=tenancy.authenticator if tenancy else None,
        usage=tenancy.usage if tenancy else None,
        key_manager=tenancy.key_manager if tenancy else None,
        usage_reader=tenancy.usage_reader if tenancy else None,
        limiter=tenancy.limiter if tenancy else None,
        responses=tenancy.responses if tenancy else _response_store(settings),
        files=files,
        vector_stores=vector_stores,
    )


def _response_store(settings: AihubConfig) -> ResponseStore:
    """Stored /v1/responses without tenancy: the gateway's SQLite file, <home>/gateway.db."""
    from tenancy.response_store import open_response_store

    return open_response_store(settings.app.home, settings.tenancy.response_row_max_bytes)


def build_embedded_app(settings: AihubConfig, console: Console | None = None) -> FastAPI:
    from aihub.default_models import ensure_default_models
    from gateway.app import create_app

    console = console or Console(stderr=True)
    store = open_store(settings)
    if settings.app.prepare_defaults:
        ensure_default_models(store, settings.app, console)
    services = build_services(settings, store)
    if settings.app.demo and services.default_embedder is not None:
        from aihub.demo import ensure_demo

        embedder_config = next(e for e in settings.app.embedders if e.id == services.default_embedder)
        assert embedder_config.ref is not None
        embedder_ref = store.resolve(embedder_config.ref).pinned_ref
        ensure_demo(store, services.embedders[services.default_embedder], embedder_ref, console)
    return create_app(settings.gateway_settings(), services)
