"""``GET /v1/models`` and ``GET /v1/models/{id}`` (ids may contain slashes, e.g. ``rag/name:tag``)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.errors import ModelNotFoundError
from gateway.catalog import CatalogEntry
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.models import ModelCard, ModelList
from gateway.state import gateway_state
from gateway.tenant_auth import principal_of

router = APIRouter(tags=["models"])


def _entries(request: Request) -> list[CatalogEntry]:
    """Generation models, pipelines and agents, then the embedding models (as OpenAI lists both)."""
    state = gateway_state(request)
    entries = list(state.catalog.entries())
    listed = {entry.id for entry in entries}
    entries += [
        CatalogEntry(id=embedder_id, created=0, owned_by="aihub")
        for embedder_id in state.services.embedders
        if embedder_id not in listed
    ]
    principal = principal_of(request.scope)
    if principal is not None:  # a key lists only what it may call
        entries = [
            entry
            for entry in entries
            if any(principal.scopes.allows_model(name) for name in (entry.id, entry.alias_of) if name)
        ]
    return entries


@router.get("/v1/models", response_model=ModelList, summary="List models")
async def list_models(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "models"
    data = [entry.as_wire() for entry in _entries(request)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, summary="Retrieve a model")
async def retrieve_model(request: Request, model_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "models.retrieve"
    for entry in _entries(request):
        if entry.id == model_id:
            return Response(orjson.dumps(entry.as_wire()), media_type="application/json")
    raise ModelNotFoundError(f"The model '{model_id}' does not exist.", param="model")
