"""``POST /v1/completions`` (legacy text completions): JSON and server-sent events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.completion_service import json_response, start_generation
from gateway.disconnect import ClientDisconnected, client_closed_response, until_disconnected
from gateway.generation import collect, stream_events
from gateway.protocol.completions import CompletionChunks, CompletionRequest, completion
from gateway.request_body import body_schema
from gateway.sse import EventStreamResponse

router = APIRouter(tags=["completions"])
ENDPOINT = "completions"


@router.post(
    "/v1/completions",
    openapi_extra=body_schema(CompletionRequest),
    response_model=None,
    summary="Create a text completion",
)
async def create_completion(request: Request) -> Response:
    try:
        started = await start_generation(request, CompletionRequest, ENDPOINT, "cmpl")
    except ClientDisconnected:  # it left while its request waited for the engine
        return client_closed_response(request.scope)
    echo = (started.request.prompt or "") if started.body.echo else ""
    headers = started.target.headers
    if started.body.stream:
        chunks = CompletionChunks(started.head, started.body.include_usage)
        events = stream_events(started.generation, chunks, ENDPOINT, leading_text=echo)
        return EventStreamResponse(events, headers=headers)
    try:
        outcome = await until_disconnected(request, collect(started.generation))
    except ClientDisconnected:
        return client_closed_response(request.scope)
    return json_response(completion(started.head, outcome, echo), headers)
