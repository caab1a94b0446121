"""``POST /v1/vector_stores`` and ``GET/POST/DELETE /v1/vector_stores/{id}``: stores made over the API,
each change an ingestion job whose result is a new index version in the hub (see ``core.vector_stores``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from core.errors import NotFoundError
from core.vector_stores import is_store_id
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.vector_store_objects import (
    CreateVectorStoreRequest,
    Deleted,
    UpdateVectorStoreRequest,
    VectorStoreObject,
)
from gateway.request_body import parse_body
from gateway.vector_store_access import caller_project, vector_store_service

router = APIRouter(tags=["vector_stores"])


def json_response(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def check_store_id(vector_store_id: str) -> None:
    # Hub indices are read-only here: only vs_ stores are modified or deleted over the API.
    if not is_store_id(vector_store_id):
        raise NotFoundError(
            f"No vector store found with id '{vector_store_id}'.",
            param="vector_store_id",
            code="vector_store_not_found",
        )


@router.post("/v1/vector_stores", response_model=None, summary="Create a vector store from uploaded files")
async def create_vector_store(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    stores = vector_store_service(request)
    body = await parse_body(request, CreateVectorStoreRequest)
    files = body.files()
    metadata = body.metadata or {}
    record = await asyncio.to_thread(stores.create, caller_project(request), body.name, files, metadata)
    return json_response(VectorStoreObject.of(record))


@router.get("/v1/vector_stores/{vector_store_id}", response_model=None, summary="Retrieve a vector store")
async def retrieve_vector_store(request: Request, vector_store_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    record = await asyncio.to_thread(stores.get, caller_project(request), vector_store_id)
    return json_response(VectorStoreObject.of(record))


@router.post("/v1/vector_stores/{vector_store_id}", response_model=None, summary="Modify a vector store")
async def modify_vector_store(request: Request, vector_store_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    body = await parse_body(request, UpdateVectorStoreRequest)
    if body.expires_after is not None:
        CreateVectorStoreRequest(expires_after=body.expires_after).files()  # refused: not supported
    record = await asyncio.to_thread(
        lambda: stores.modify(
            caller_project(request), vector_store_id, name=body.name, metadata=body.metadata
        )
    )
    return json_response(VectorStoreObject.of(record))


@router.delete("/v1/vector_stores/{vector_store_id}", response_model=None, summary="Delete a vector store")
async def delete_vector_store(request: Request, vector_store_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    await asyncio.to_thread(stores.delete, caller_project(request), vector_store_id)
    return json_response(Deleted(id=vector_store_id, object="vector_store.deleted"))
