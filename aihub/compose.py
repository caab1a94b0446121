"""The embedded composition root: builds every package's settings and backends, and wires the gateway."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from aihub.config_file import build_settings, load_config
from aihub.settings import AppSettings
from core.embedder import Embedder
from core.engine import Engine
from core.errors import InvalidSpecError
from core.model_config import ModelConfig, adapter_aliases
from core.store import ArtifactStore
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from hub.settings import HubSettings
from hub.store import LocalStore
from retrievers.settings import RetrieverSettings
from serving.settings import ServingSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllSettings:
    app: AppSettings
    gateway: GatewaySettings
    serving: ServingSettings
    hub: HubSettings
    retrievers: RetrieverSettings


def load_all_settings(config_path: Path | None = None) -> AllSettings:
    sections = load_config(config_path)
    app = build_settings(AppSettings, sections.get("app"))
    hub_section = {"home": app.home, **sections.get("hub", {})}
    retrievers_section = {"work_dir": app.cache_dir / "retrievers", **sections.get("retrievers", {})}
    return AllSettings(
        app=app,
        gateway=build_settings(GatewaySettings, sections.get("gateway")),
        serving=build_settings(ServingSettings, sections.get("serving")),
        hub=build_settings(HubSettings, hub_section),
        retrievers=build_settings(RetrieverSettings, retrievers_section),
    )


def open_store(settings: AllSettings) -> LocalStore:
    return LocalStore(settings.hub)


def build_engine(config: ModelConfig, settings: AllSettings, store: ArtifactStore) -> Engine:
    """The engine of the base model alone (its adapters, if any, are left out)."""
    return build_engines(config.model_copy(update={"adapters": ()}), settings, store)[config.id]


def build_engines(config: ModelConfig, settings: AllSettings, store: ArtifactStore) -> dict[str, Engine]:
    """The model's engine and one per adapter, keyed by served model id."""
    from serving.model_engines import build_model_engines

    return build_model_engines(config, settings.serving, store)


def build_embedder(config: ModelConfig, settings: AllSettings, store: ArtifactStore) -> Embedder:
    from retrievers.factory import build_embedder as build_retriever_embedder

    if config.ref is None:
        raise InvalidSpecError(f"embedder {config.id!r} needs a hub reference `ref`")
    artifact = store.resolve(config.ref)
    return build_retriever_embedder(
        config.id, store.materialize(artifact.pinned_ref), settings.retrievers, digest=artifact.digest
    )


def build_services(settings: AllSettings, store: ArtifactStore) -> GatewayServices:
    from retrievers.index_provider import HubIndexProvider

    engines: dict[str, Engine] = {}
    for config in settings.app.models:
        for model_id, engine in build_engines(config, settings, store).items():
            if model_id in engines:
                raise InvalidSpecError(f"model id {model_id!r} is served twice; give each model its own id")
            engines[model_id] = engine
    embedders = {config.id: build_embedder(config, settings, store) for config in settings.app.embedders}
    default_embedder = settings.app.default_embedder if settings.app.default_embedder in embedders else None
    # BM25-only indices need no embedder, so the provider is always there.
    indexes = HubIndexProvider(store, embedders, settings.retrievers)
    return GatewayServices(
        engines=engines,
        embedders=embedders,
        default_embedder=default_embedder,
        indexes=indexes,
        store=store,
    )


def build_embedded_app(settings: AllSettings, console: Console | None = None) -> FastAPI:
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
    return create_app(settings.gateway.with_aliases(adapter_aliases(settings.app.models)), services)
