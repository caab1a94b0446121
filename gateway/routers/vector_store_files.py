"""A vector store's files and file batches: adding files queues an ingestion job (a new index version);
the objects show its progress (``status``, ``file_counts``, ``last_error``)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.vector_store_objects import (
    CreateFileBatchRequest,
    CreateVectorStoreFileRequest,
    Deleted,
    FileBatchObject,
    ObjectList,
    VectorStoreFileObject,
)
from gateway.request_body import parse_body
from gateway.routers.vector_store_crud import check_store_id, json_response
from gateway.vector_store_access import caller_project, vector_store_service

router = APIRouter(tags=["vector_stores"])
FileStatusFilter = Literal["in_progress", "completed", "failed", "cancelled"]


def _listing(data: list[VectorStoreFileObject], has_more: bool) -> Response:
    return json_response(
        ObjectList(
            data=[d.model_dump() for d in data],
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )
    )


@router.post(
    "/v1/vector_stores/{vector_store_id}/files", response_model=None, summary="Add a file to a store"
)
async def create_vector_store_file(request: Request, vector_store_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    body = await parse_body(request, CreateVectorStoreFileRequest)
    added, _ = await asyncio.to_thread(
        lambda: stores.add_files(caller_project(request), vector_store_id, [body.new_file()], batch=False)
    )
    return json_response(VectorStoreFileObject.of(added[0]))


@router.get("/v1/vector_stores/{vector_store_id}/files", response_model=None, summary="List a store's files")
async def list_vector_store_files(
    request: Request,
    vector_store_id: str,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    filter: FileStatusFilter | None = None,
) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    records, has_more = await asyncio.to_thread(
        lambda: stores.list_files(
            caller_project(request), vector_store_id, limit=limit, order=order, after=after, status=filter
        )
    )
    return _listing([VectorStoreFileObject.of(r) for r in records], has_more)


@router.get(
    "/v1/vector_stores/{vector_store_id}/files/{file_id}", response_model=None, summary="A store's file"
)
async def retrieve_vector_store_file(request: Request, vector_store_id: str, file_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    record = await asyncio.to_thread(stores.get_file, caller_project(request), vector_store_id, file_id)
    return json_response(VectorStoreFileObject.of(record))


@router.delete(
    "/v1/vector_stores/{vector_store_id}/files/{file_id}",
    response_model=None,
    summary="Remove a file from a store (a new index version without it)",
)
async def delete_vector_store_file(request: Request, vector_store_id: str, file_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    await asyncio.to_thread(stores.delete_file, caller_project(request), vector_store_id, file_id)
    return json_response(Deleted(id=file_id, object="vector_store.file.deleted"))


@router.post(
    "/v1/vector_stores/{vector_store_id}/file_batches", response_model=None, summary="Add files as one batch"
)
async def create_file_batch(request: Request, vector_store_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    body = await parse_body(request, CreateFileBatchRequest)
    files = body.new_files()
    _, batch = await asyncio.to_thread(
        lambda: stores.add_files(caller_project(request), vector_store_id, files, batch=True)
    )
    assert batch is not None
    return json_response(FileBatchObject.of(batch))


@router.get(
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", response_model=None, summary="A file batch"
)
async def retrieve_file_batch(request: Request, vector_store_id: str, batch_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    batch = await asyncio.to_thread(stores.get_batch, caller_project(request), vector_store_id, batch_id)
    return json_response(FileBatchObject.of(batch))


@router.post(
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
    response_model=None,
    summary="Cancel a file batch (files not yet taken by a build)",
)
async def cancel_file_batch(request: Request, vector_store_id: str, batch_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    batch = await asyncio.to_thread(stores.cancel_batch, caller_project(request), vector_store_id, batch_id)
    return json_response(FileBatchObject.of(batch))


@router.get(
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
    response_model=None,
    summary="The files of a batch",
)
async def list_file_batch_files(
    request: Request,
    vector_store_id: str,
    batch_id: str,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
    filter: FileStatusFilter | None = None,
) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "vector_stores"
    check_store_id(vector_store_id)
    stores = vector_store_service(request)
    records, has_more = await asyncio.to_thread(
        lambda: stores.list_files(
            caller_project(request),
            vector_store_id,
            limit=limit,
            order=order,
            after=after,
            status=filter,
            batch_id=batch_id,
        )
    )
    return _listing([VectorStoreFileObject.of(r) for r in records], has_more)
