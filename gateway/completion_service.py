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
from core.engine import check_capabilities
from core.errors import InvalidRequestError
from core.model_config import MaxTokens
from gateway.catalog import Target
from gateway.composition import COMPOSITION_HEADER
from gateway.disconnect import until_disconnected
from gateway.generation import Deadline, OpenGeneration, new_id, open_generation
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY
from gateway.protocol.common import ResponseHead, SamplingFields
from gateway.request_body import parse_body
from gateway.state import gateway_state
from gateway.tenant_auth import (
    COMPOSITION_SCOPE_KEY,
    REQUEST_ID_SCOPE_KEY,
    check_model_scope,
    principal_of,
)

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
    """Parse, resolve the model id, and pull the engine's first chunk (so input errors get a status).

    Raises ``ClientDisconnected`` when the client leaves meanwhile (queued for a batch slot, say).
    """
    request.scope[ENDPOINT_SCOPE_KEY] = endpoint
    body = await parse_body(request, body_model)
    return await until_disconnected(request, _open(request, body, endpoint, id_prefix))


async def _open(request: Request, body: BodyT, endpoint: str, id_prefix: str) -> StartedGeneration[BodyT]:
    scope = request.scope
    state = gateway_state(request)
    deadline = Deadline.after(state.settings.request_timeout_s)
    principal = principal_of(scope)
    if principal is not None:  # before resolving: no pipeline is built for a caller outside its scope
        check_model_scope(principal, *state.catalog.names_for_scope(body.model))
    target = await state.catalog.resolve(body.model)
    if principal is not None:
        scope[COMPOSITION_SCOPE_KEY] = target.headers.get(COMPOSITION_HEADER)
    scope[MODEL_SCOPE_KEY] = target.model_id
    head = ResponseHead(new_id(id_prefix), int(time.time()), target.model_id)
    scope[REQUEST_ID_SCOPE_KEY] = head.id
    generation_request = body.to_generation(head.id)
    bounds = state.settings.max_tokens.get(target.model_id)
    if bounds is not None:
        generation_request = bounded(generation_request, bounds)
    check_capabilities(target.engine.info, generation_request)  # e.g. response_format: 400, not ignored
    session = request.headers.get(SESSION_HEADER)
    if session:
        generation_request = replace(generation_request, session=session)
    generation = await open_generation(
        target.engine, generation_request, target.model_id, endpoint, state.metrics, scope, deadline
    )
    return StartedGeneration(body, generation_request, target, head, generation)


def bounded(request: GenerationRequest, bounds: MaxTokens) -> GenerationRequest:
    """The model's default max_tokens where the request has none; a request above its limit is refused."""
    asked = request.params.max_tokens
    if asked is None:
        if bounds.default is None:
            return request
        return replace(request, params=replace(request.params, max_tokens=bounds.default))
    if bounds.limit is not None and asked > bounds.limit:
        raise InvalidRequestError(
            f"max_tokens is {asked}, above this model's limit of {bounds.limit}.",
            param="max_tokens",
            code="invalid_value",
        )
    return request


def json_response(payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)
