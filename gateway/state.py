"""What the routers share, kept on ``app.state.gateway`` (``app.state.services`` holds the services)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from core.retrieval import Retriever
from gateway.catalog import ModelCatalog
from gateway.drain import Drain
from gateway.metrics import GatewayMetrics
from gateway.recent import Recent
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings


@dataclass(slots=True)
class GatewayState:
    settings: GatewaySettings
    services: GatewayServices
    catalog: ModelCatalog
    metrics: GatewayMetrics
    ready: bool = False
    drain: Drain = field(default_factory=Drain)  # shutdown draining (gateway.drain)
    # (project, vector store id) -> its retriever, reused by file_search for composition_tag_ttl_s.
    opened_stores: Recent[tuple[str, str], Retriever] = field(default_factory=Recent)


def gateway_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state
