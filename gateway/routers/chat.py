"""``POST /v1/chat/completions``: JSON and server-sent events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.completion_service import json_response, start_generation
from gateway.disconnect import ClientDisconnected, client_closed_response, until_disconnected
from gateway.generation import collect, stream_events
from gateway.protocol.chat import ChatChunks, ChatCompletionRequest, chat_completion
from gateway.request_body import body_schema
from gateway.sse import EventStreamResponse

router = APIRouter(tags=["chat"])
ENDPOINT = "chat.completions"


@router.post(
    "/v1/chat/completions",
    openapi_extra=body_schema(ChatCompletionRequest),
    response_model=None,
    summary="Create a chat completion",
)
async def create_chat_completion(request: Request) -> Response:
    try:
        started = await start_generation(request, ChatCompletionRequest, ENDPOINT, "chatcmpl")
    except ClientDisconnected:  # it left while its request waited for the engine
        return client_closed_response(request.scope)
    headers = started.target.headers
    if started.body.stream:
        chunks = ChatChunks(started.head, started.body.include_usage)
        return EventStreamResponse(stream_events(started.generation, chunks, ENDPOINT), headers=headers)
    try:
        outcome = await until_disconnected(request, collect(started.generation))
    except ClientDisconnected:
        return client_closed_response(request.scope)
    return json_response(chat_completion(started.head, outcome), headers)
