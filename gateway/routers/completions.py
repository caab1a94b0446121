"""``POST /v1/completions`` (legacy text completions): JSON and server-sent events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.completion_service import json_response, start_generation
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
    started = await start_generation(request, CompletionRequest, ENDPOINT, "cmpl")
    echo = (started.request.prompt or "") if started.body.echo else ""
    headers = started.target.headers
    if started.body.stream:
        chunks = CompletionChunks(started.head, started.body.include_usage)
        events = stream_events(started.generation, chunks, ENDPOINT, leading_text=echo)
        return EventStreamResponse(events, headers=headers)
    outcome = await collect(started.generation)
    return json_response(completion(started.head, outcome, echo), headers)
