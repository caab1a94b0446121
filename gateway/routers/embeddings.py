"""``POST /v1/embeddings``: texts or token ids to unit-norm vectors (float lists or base64)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from core.embedder import Embedder
from core.errors import InvalidRequestError, ModelNotFoundError
from gateway.disconnect import ClientDisconnected, client_closed_response, until_disconnected
from gateway.metrics import ENDPOINT_SCOPE_KEY, MODEL_SCOPE_KEY
from gateway.protocol.embeddings import (
    EmbeddingItem,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    encode_vector,
)
from gateway.request_body import body_schema, parse_body
from gateway.services import GatewayServices
from gateway.state import gateway_state
from gateway.tenant_auth import USAGE_SCOPE_KEY, check_model_scope, principal_of

router = APIRouter(tags=["embeddings"])


def _embedder(services: GatewayServices, model: str | None) -> tuple[str, Embedder]:
    name = model or services.default_embedder
    if name is None:
        raise InvalidRequestError("'model' is required: no default embedder is configured", param="model")
    embedder = services.embedders.get(name)
    if embedder is None:
        raise ModelNotFoundError(f"The embedding model '{name}' does not exist.", param="model")
    return name, embedder


@router.post(
    "/v1/embeddings",
    openapi_extra=body_schema(EmbeddingRequest),
    response_model=None,
    summary="Create embeddings",
)
async def create_embeddings(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "embeddings"
    body = await parse_body(request, EmbeddingRequest)
    name, embedder = _embedder(gateway_state(request).services, body.model)
    principal = principal_of(request.scope)
    if principal is not None:
        check_model_scope(principal, name)
    request.scope[MODEL_SCOPE_KEY] = name
    if body.dimensions is not None and body.dimensions != embedder.info.dimensions:
        raise InvalidRequestError(
            f"'{name}' returns {embedder.info.dimensions} dimensions; 'dimensions' cannot change that",
            param="dimensions",
        )
    try:
        # A client that leaves stops its forwards (the embedder drops a cancelled request's batches).
        result = await until_disconnected(request, embedder.embed(body.inputs()))
    except ClientDisconnected:
        return client_closed_response(request.scope)
    request.scope[USAGE_SCOPE_KEY] = (result.prompt_tokens, 0)
    # model_construct: the values are ours and already valid; validating thousands of floats costs.
    payload = EmbeddingResponse.model_construct(
        data=[
            EmbeddingItem.model_construct(index=i, embedding=encode_vector(vector, body.encoding_format))
            for i, vector in enumerate(result.vectors)
        ],
        model=name,
        usage=EmbeddingUsage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    )
    return Response(payload.model_dump_json(), media_type="application/json")
