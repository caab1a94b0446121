"""``POST /v1/completions`` (legacy text completions): JSON and server-sent events."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.chat import GenerationChunk
from gateway.generation import Outcome, collect, new_id, open_generation, stream_events
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY
from gateway.protocol.completions import CompletionRequest
from gateway.request_body import body_schema, parse_body
from gateway.sse import EventStreamResponse
from gateway.state import gateway_state

router = APIRouter(tags=["completions"])
ENDPOINT = "completions"


def _finish(reason: str | None) -> str | None:
    # This endpoint's schema knows no `tool_calls`.
    return "stop" if reason == "tool_calls" else reason


@router.post(
    "/v1/completions",
    openapi_extra=body_schema(CompletionRequest),
    response_model=None,
    summary="Create a text completion",
)
async def create_completion(request: Request) -> Response:
    scope = request.scope
    scope[ENDPOINT_SCOPE_KEY] = ENDPOINT
    body = await parse_body(request, CompletionRequest)
    state = gateway_state(request)
    target = await state.catalog.resolve(body.model)
    scope[MODEL_SCOPE_KEY] = target.model_id
    completion_id = new_id("cmpl")
    generation_request = body.to_generation(completion_id)
    echo = generation_request.prompt if body.echo else ""
    generation = await open_generation(
        target.engine, generation_request, target.model_id, ENDPOINT, state.metrics, scope
    )
    head: dict[str, Any] = {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": target.model_id,
    }
    if body.stream:
        include_usage = body.include_usage

        def chunk(text: str | None, source: GenerationChunk | Outcome | None) -> dict[str, Any]:
            finish_reason = source.finish_reason if isinstance(source, Outcome) else None
            choice = {
                "index": 0,
                "text": text or "",
                "logprobs": None,
                "finish_reason": _finish(finish_reason),
            }
            # No `"usage": null` here (unlike chat): this endpoint's schema does not allow it.
            return {**head, "choices": [choice]}

        def usage_chunk(outcome: Outcome) -> dict[str, Any]:
            return {**head, "choices": [], "usage": outcome.usage()}

        events = stream_events(
            generation, chunk, usage_chunk if include_usage else None, ENDPOINT, leading_text=echo or ""
        )
        return EventStreamResponse(events, headers=target.headers)
    outcome = await collect(generation)
    choice = {
        "index": 0,
        "text": (echo or "") + outcome.text,
        "logprobs": None,
        "finish_reason": _finish(outcome.finish_reason),
    }
    payload = {**head, "choices": [choice], "usage": outcome.usage()}
    return Response(orjson.dumps(payload), media_type="application/json", headers=target.headers)
