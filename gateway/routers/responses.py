"""``/v1/responses``: create (JSON or events), retrieve, delete, and list a response's input items.

Stored responses belong to the caller's project (the default project without tenancy): another
project's id is a 404, as an unknown one.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from core.errors import InvalidRequestError
from gateway.completion_service import json_response
from gateway.disconnect import ClientDisconnected, client_closed_response, until_disconnected
from gateway.generation import collect
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.responses import CreateResponseRequest
from gateway.request_body import body_schema
from gateway.response_events import response_events
from gateway.response_service import Prepared, finish, not_found, prepare, project_of, response_store
from gateway.sse import EventStreamResponse

router = APIRouter(tags=["responses"])


@router.post(
    "/v1/responses",
    openapi_extra=body_schema(CreateResponseRequest),
    response_model=None,
    summary="Create a model response",
)
async def create_response(request: Request) -> Response:
    try:
        prepared: Prepared = await until_disconnected(request, prepare(request))
    except ClientDisconnected:
        return client_closed_response(request.scope)
    if prepared.draft.body.stream:
        return EventStreamResponse(response_events(prepared), headers=prepared.headers)
    try:
        outcome = await until_disconnected(request, collect(prepared.generation))
    except ClientDisconnected:
        return client_closed_response(request.scope)
    return json_response(await finish(prepared, outcome), prepared.headers)


async def _stored(request: Request, response_id: str) -> Any:
    store = response_store(request)
    row = None if store is None else await asyncio.to_thread(store.get, project_of(request), response_id)
    if row is None:
        raise not_found(response_id)
    return row


@router.get("/v1/responses/{response_id}", response_model=None, summary="Retrieve a model response")
async def get_response(request: Request, response_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "responses.get"
    row = await _stored(request, response_id)
    return json_response(row.response, {})


@router.delete("/v1/responses/{response_id}", response_model=None, summary="Delete a model response")
async def delete_response(request: Request, response_id: str) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "responses.delete"
    store = response_store(request)
    deleted = store is not None and await asyncio.to_thread(store.delete, project_of(request), response_id)
    if not deleted:
        raise not_found(response_id)
    return json_response({"id": response_id, "object": "response", "deleted": True}, {})


@router.get(
    "/v1/responses/{response_id}/input_items", response_model=None, summary="List a response's input items"
)
async def list_input_items(
    request: Request,
    response_id: str,
    limit: int = Query(default=20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "responses.input_items"
    row = await _stored(request, response_id)
    items = list(row.input_items)
    if order == "desc":
        items.reverse()
    if after is not None:
        position = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        if position is None:
            raise InvalidRequestError(f"No input item with id '{after}' in this response.", param="after")
        items = items[position + 1 :]
    page = items[:limit]
    listing = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
    return json_response(listing, {})
