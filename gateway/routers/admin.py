"""``/admin/upstreams``: see and change the members of upstream pools without a restart (admin key)."""

from __future__ import annotations

import hmac

import orjson
from fastapi import APIRouter, Request
from pydantic import Field, ValidationError
from starlette.responses import Response

from core.engine import ReplicaPool
from core.errors import AuthenticationError, InvalidRequestError, NotFoundError, PermissionDeniedError
from gateway.errors import from_validation_error
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.common import WireModel
from gateway.routers.health import pool_report
from gateway.state import gateway_state

router = APIRouter(tags=["admin"])


class MemberIn(WireModel):
    model: str = Field(min_length=1, description="The configured model id whose pool this is")
    url: str = Field(min_length=1, description="The upstream's base URL, e.g. http://10.0.0.5:8000/v1")
    upstream_model: str | None = Field(default=None, description="Its model name there (default: the id)")


def _check_admin(request: Request) -> None:
    request.scope[ENDPOINT_SCOPE_KEY] = "admin"
    keys = gateway_state(request).settings.admin_keys
    if not keys:
        raise PermissionDeniedError("The admin API is off: set gateway.admin_keys to use it.")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The admin API needs 'Authorization: Bearer <admin key>'.")
    given = token.strip().encode()
    if not any([hmac.compare_digest(given, key.encode()) for key in keys]):
        raise PermissionDeniedError("This key is not an admin key.", code="not_admin")


def _pool(request: Request, name: str) -> ReplicaPool:
    for pool in gateway_state(request).services.pools:
        if pool.name == name:
            return pool
    raise NotFoundError(f"No model '{name}' is served by upstreams.", param="model", code="model_not_found")


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


@router.get("/admin/upstreams", summary="Upstream pools and the state of each member")
async def list_upstreams(request: Request) -> Response:
    _check_admin(request)
    return _json({pool.name: pool_report(pool) for pool in gateway_state(request).services.pools})


@router.post("/admin/upstreams", summary="Add an upstream to a model's pool (or replace one with its URL)")
async def add_upstream(request: Request) -> Response:
    _check_admin(request)
    try:
        member = MemberIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    pool = _pool(request, member.model)
    try:
        pool.add(member.url, member.upstream_model)
    except ValidationError as exc:
        raise InvalidRequestError(f"Invalid upstream URL: {exc.errors()[0]['msg']}", param="url") from None
    return _json(pool_report(pool), 201)


@router.delete("/admin/upstreams", summary="Remove an upstream (by URL) from a model's pool")
async def remove_upstream(request: Request, model: str, url: str) -> Response:
    _check_admin(request)
    pool = _pool(request, model)
    if not pool.remove(url):
        raise NotFoundError(f"'{model}' has no upstream {url}.", param="url", code="upstream_not_found")
    return _json(pool_report(pool))
