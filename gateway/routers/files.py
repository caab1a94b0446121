"""``/v1/files``: upload (multipart), list, retrieve, content and delete; scoped to the caller's project."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from core.errors import InvalidRequestError, PayloadTooLargeError
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.files import FileDeleted, FileList, FileObject
from gateway.state import gateway_state
from gateway.vector_store_access import caller_project, file_store

router = APIRouter(tags=["files"])


def _json(model: FileObject | FileList | FileDeleted) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/v1/files", response_model=None, summary="Upload a file (multipart: file, purpose)")
async def create_file(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "files"
    files = file_store(request)
    limit = gateway_state(request).settings.max_file_bytes
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InvalidRequestError(
            "Upload the file as multipart/form-data with 'file' and 'purpose'.", param="file"
        )
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        purpose = form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError("Missing required parameter: 'file'.", param="file")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidRequestError("Missing required parameter: 'purpose'.", param="purpose")
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise PayloadTooLargeError(
                f"File {upload.filename!r} is larger than the limit of {limit:,} bytes.", param="file"
            )
        filename = upload.filename or "upload"
    record = await asyncio.to_thread(files.create, caller_project(request), filename, purpose, data)
    return _json(FileObject.of(record))


@router.get("/v1/files", response_model=None, summary="List the project's files")
async def list_files(
    request: Request,
    purpose: str | None = None,
    limit: int = Query(default=10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "files"
    files = file_store(request)
    records, has_more = await asyncio.to_thread(
        files.list, caller_project(request), purpose=purpose, limit=limit, order=order, after=after
    )
    data = [FileObject.of(r) for r in records]
    return _json(
        FileList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )
    )


@router.get("/v1/files/{file_id}", response_model=None, summary="Retrieve a file")
async def retrieve_file(request: Request, file_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "files"
    record = await asyncio.to_thread(file_store(request).get, caller_project(request), file_id)
    return _json(FileObject.of(record))


@router.get("/v1/files/{file_id}/content", response_model=None, summary="A file's bytes")
async def file_content(request: Request, file_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "files"
    data = await asyncio.to_thread(file_store(request).content, caller_project(request), file_id)
    return Response(data, media_type="application/octet-stream")


@router.delete("/v1/files/{file_id}", response_model=None, summary="Delete a file")
async def delete_file(request: Request, file_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "files"
    await asyncio.to_thread(file_store(request).delete, caller_project(request), file_id)
    return _json(FileDeleted(id=file_id))
