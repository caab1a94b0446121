"""``GET /v1/vector_stores`` and ``POST /v1/vector_stores/{id}/search`` over the hub's index artifacts.

A vector store id is an index reference (``indexes/scifact:latest``, ``…@sha256:…``), a digest, or the
``vs_…`` id of a store made over the API (the caller's project's; ``routers.vector_store_crud``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from starlette.responses import Response

from core.errors import AihubError
from core.retrieval import SearchHit
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.vector_store_objects import VectorStoreObject
from gateway.protocol.vector_stores import (
    ContentPart,
    SearchResult,
    SearchResultsPage,
    VectorStore,
    VectorStoreList,
    VectorStoreSearchRequest,
    parse_filter,
)
from gateway.request_body import body_schema, parse_body
from gateway.services import GatewayServices
from gateway.state import gateway_state
from gateway.vector_store_access import caller_project, open_vector_store

router = APIRouter(tags=["vector_stores"])


def _filename(hit: SearchHit) -> str:
    name = hit.attributes.get("filename")
    if isinstance(name, str) and name:
        return name
    return hit.title or (PurePosixPath(hit.source).name if hit.source else hit.doc_id)


def _result(hit: SearchHit) -> SearchResult:
    # model_construct: values from our own index need no validation on this hot path.
    return SearchResult.model_construct(
        file_id=hit.doc_id,
        filename=_filename(hit),
        score=hit.score,
        attributes=dict(hit.attributes),
        content=[ContentPart.model_construct(text=hit.text)],
    )


def _created_times(services: GatewayServices) -> dict[str, int]:
    created: dict[str, int] = {}
    if services.store is None:
        return created
    for artifact in services.store.list("index"):
        if artifact.created:
            with contextlib.suppress(ValueError):
                created[artifact.digest] = int(datetime.fromisoformat(artifact.created).timestamp())
    return created


@router.get("/v1/vector_stores", response_model=None, summary="List vector stores (hub indices)")
async def list_vector_stores(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    services = gateway_state(request).services
    created = _created_times(services)
    infos = services.indexes.list() if services.indexes is not None else []
    data: list[VectorStore | VectorStoreObject] = [
        VectorStore(
            id=info.ref,
            created_at=created.get(info.digest, 0),
            last_active_at=created.get(info.digest, 0),
            name=info.ref,
            file_counts={
                "in_progress": 0,
                "completed": info.documents,
                "failed": 0,
                "cancelled": 0,
                "total": info.documents,
            },
            metadata={"digest": info.digest, "backend": info.backend, "chunks": str(info.chunks)},
        )
        for info in infos
    ]
    made = services.vector_stores
    if made is not None:  # the caller's own stores first, newest first
        project = caller_project(request)
        stores, _ = await asyncio.to_thread(lambda: made.list(project, limit=10000, order="desc", after=None))
        data = [*(VectorStoreObject.of(s) for s in stores), *data]
    listing = VectorStoreList(
        data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None
    )
    return Response(listing.model_dump_json(), media_type="application/json")


@router.post(
    "/v1/vector_stores/{vector_store_id:path}/search",
    openapi_extra=body_schema(VectorStoreSearchRequest),
    response_model=None,
    summary="Search a vector store (a hub index)",
)
async def search_vector_store(request: Request, vector_store_id: str) -> Response:
    return await search_vector_store_hot(request)


async def search_vector_store_hot(request: Request) -> Response:
    """The handler proper; ``gateway.fast_path.hot_routes`` calls it directly, past FastAPI's routing."""
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores.search"
    vector_store_id: str = request.path_params["vector_store_id"]
    body = await parse_body(request, VectorStoreSearchRequest)
    query = body.query_text()
    filters = parse_filter(body.filters) if body.filters is not None else None
    mode = body.mode()
    try:
        retriever = await open_vector_store(
            gateway_state(request).services, caller_project(request), vector_store_id
        )
    except AihubError as exc:
        exc.param = exc.param or "vector_store_id"
        raise
    hits = await retriever.search(query, top_k=body.max_num_results, filters=filters, mode=mode)
    threshold = body.ranking_options.score_threshold if body.ranking_options else None
    if threshold is not None:
        hits = [h for h in hits if h.score >= threshold]
    page = SearchResultsPage.model_construct(search_query=[query], data=[_result(h) for h in hits])
    return Response(page.model_dump_json(), media_type="application/json")
