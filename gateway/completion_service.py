"""One OpenAI generation request, from its body to an open engine stream: what the chat and completions
routes share. The routes then only pick their response bodies (``gateway.protocol``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import orjson
from fastapi import Request
from starlette.responses import Response

from core.chat import GenerationRequest
from gateway.catalog import Target
from gateway.generation import OpenGeneration, new_id, open_generation
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY
from gateway.protocol.common import ResponseHead, SamplingFields
from gateway.request_body import parse_body
from gateway.state import gateway_state

# Session affinity (engines balancing over replicas keep one session on one replica); else ``user``.
SESSION_HEADER = "x-aihub-session"

BodyT = TypeVar("BodyT", bound=SamplingFields)


@dataclass(slots=True)
class StartedGeneration(Generic[BodyT]):
    body: BodyT
    request: GenerationRequest
    target: Target
    head: ResponseHead
    generation: OpenGeneration


async def start_generation(
    request: Request, body_model: type[BodyT], endpoint: str, id_prefix: str
) -> StartedGeneration[BodyT]:
    """Parse, resolve the model id, and pull the engine's first chunk (so input errors get a status)."""
    scope = request.scope
    scope[ENDPOINT_SCOPE_KEY] = endpoint
    body = await parse_body(request, body_model)
    state = gateway_state(request)
    target = await state.catalog.resolve(body.model)
    scope[MODEL_SCOPE_KEY] = target.model_id
    head = ResponseHead(new_id(id_prefix), int(time.time()), target.model_id)
    generation_request = body.to_generation(head.id)
    session = request.headers.get(SESSION_HEADER)
    if session:
        generation_request = replace(generation_request, session=session)
    generation = await open_generation(
        target.engine, generation_request, target.model_id, endpoint, state.metrics, scope
    )
    return StartedGeneration(body, generation_request, target, head, generation)


def json_response(payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)
