"""``POST /v1/chat/completions``: JSON and server-sent events."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.chat import GenerationChunk, ToolCall
from gateway.generation import Outcome, citations_of, collect, new_id, open_generation, stream_events
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY
from gateway.protocol.chat import ChatCompletionRequest
from gateway.request_body import body_schema, parse_body
from gateway.sse import EventStreamResponse
from gateway.state import gateway_state

router = APIRouter(tags=["chat"])
ENDPOINT = "chat.completions"


@router.post(
    "/v1/chat/completions",
    openapi_extra=body_schema(ChatCompletionRequest),
    response_model=None,
    summary="Create a chat completion",
)
async def create_chat_completion(request: Request) -> Response:
    scope = request.scope
    scope[ENDPOINT_SCOPE_KEY] = ENDPOINT
    body = await parse_body(request, ChatCompletionRequest)
    state = gateway_state(request)
    target = await state.catalog.resolve(body.model)
    scope[MODEL_SCOPE_KEY] = target.model_id
    completion_id = new_id("chatcmpl")
    generation_request = body.to_generation(completion_id)
    generation = await open_generation(
        target.engine, generation_request, target.model_id, ENDPOINT, state.metrics, scope
    )
    created = int(time.time())
    if body.stream:
        include_usage = body.include_usage
        head: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": target.model_id,
        }
        sent_role = sent_citations = False

        def chunk(text: str | None, source: GenerationChunk | Outcome | None) -> dict[str, Any]:
            nonlocal sent_role, sent_citations
            final = isinstance(source, Outcome)
            delta: dict[str, Any] = {} if final else {"content": text or ""}
            if not sent_role:
                sent_role = True
                delta = {"role": "assistant", "content": text or ""}
            finish = source.finish_reason if isinstance(source, Outcome) else None
            if isinstance(source, Outcome) and source.tool_calls:
                delta["tool_calls"] = [
                    {"index": index, **call} for index, call in enumerate(tool_calls_wire(source.tool_calls))
                ]
            payload: dict[str, Any] = {
                **head,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            citations = source.citations if isinstance(source, Outcome) else citations_of(source)
            if citations and not sent_citations:
                sent_citations = True
                payload["citations"] = list(citations)
            if include_usage:
                payload["usage"] = None
            return payload

        def usage_chunk(outcome: Outcome) -> dict[str, Any]:
            return {**head, "choices": [], "usage": outcome.usage()}

        events = stream_events(generation, chunk, usage_chunk if include_usage else None, ENDPOINT)
        return EventStreamResponse(events, headers=target.headers)
    outcome = await collect(generation)
    message: dict[str, Any] = {"role": "assistant", "content": outcome.text, "refusal": None}
    if outcome.tool_calls:
        message["tool_calls"] = tool_calls_wire(outcome.tool_calls)
        message["content"] = outcome.text or None
    payload: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": target.model_id,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": outcome.finish_reason}
        ],
        "usage": outcome.usage(),
    }
    if outcome.citations:
        payload["citations"] = list(outcome.citations)  # aihub extension: the sources of a RAG answer
    return Response(orjson.dumps(payload), media_type="application/json", headers=target.headers)


def tool_calls_wire(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in calls
    ]
