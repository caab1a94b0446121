"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from core.engine import ReplicaPool
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.state import gateway_state

router = APIRouter(tags=["operations"])

_OK = orjson.dumps({"status": "ok"})


@router.get("/health", summary="Liveness")
async def health(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "health"
    return Response(_OK, media_type="application/json")


def pool_report(pool: ReplicaPool) -> dict[str, object]:
    return {
        "ready": pool.ready(),
        "upstreams": [
            {
                "url": r.url,
                "model": r.model,
                "state": r.state,
                "source": r.source,
                "outstanding": r.outstanding,
                "requests": r.requests,
                "errors": r.errors,
                "ejections": r.ejections,
                "last_error": r.last_error,
            }
            for r in pool.states()
        ],
    }


@router.get("/ready", summary="Readiness: engines started, every upstream pool has one up, not shutting down")
async def ready(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "ready"
    state = gateway_state(request)
    pools = state.services.pools
    body: dict[str, object]
    if state.drain.draining:  # shutting down: a balancer sends nothing new here
        body = {"status": "draining", "in_flight": state.drain.in_flight}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    if not state.ready:
        body = {"status": "starting", "models": sorted(state.services.engines)}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    # A local engine that died (its engine process killed) cannot serve: not ready, and says which.
    dead = {model_id: reason for model_id, e in state.services.health.items() if (reason := e.failure())}
    if dead:
        body = {"status": "unavailable", "engines": dead}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    if not pools:
        return Response(_OK, media_type="application/json")
    # A model whose upstreams are all down cannot serve: the gateway is not ready, and says which.
    report = {pool.name: pool_report(pool) for pool in pools}
    ok = all(entry["ready"] for entry in report.values())
    body = {"status": "ok" if ok else "unavailable", "models": report}
    return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "metrics"
    registry = gateway_state(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
