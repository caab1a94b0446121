"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.state import gateway_state

router = APIRouter(tags=["operations"])

_OK = orjson.dumps({"status": "ok"})


@router.get("/health", summary="Liveness")
async def health(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "health"
    return Response(_OK, media_type="application/json")


@router.get("/ready", summary="Readiness: every engine has started")
async def ready(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "ready"
    state = gateway_state(request)
    if state.ready:
        return Response(_OK, media_type="application/json")
    body = {"status": "starting", "models": sorted(state.services.engines)}
    return Response(orjson.dumps(body), status_code=503, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "metrics"
    registry = gateway_state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
