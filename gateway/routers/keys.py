"""``/admin/keys``: list, create, show and revoke projects' API keys over HTTP (admin only).

The key store is a ``core.tenancy.KeyManager`` from the composition root (``services.key_manager``);
without one, tenancy is off and these routes say so. A new key's token is in the creation response and
nowhere else: listing and showing give the public key id only.
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field, ValidationError
from starlette.responses import Response

from core.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from core.tenancy import KeyInfo, KeyManager, Limits, Scopes, parse_list
from gateway.errors import from_validation_error
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.protocol.common import WireModel
from gateway.state import gateway_state
from gateway.tenant_auth import principal_of

router = APIRouter(tags=["admin"])

ALL = ("*",)


class KeyCreateIn(WireModel):
    # Unknown fields are refused here, unlike the OpenAI routes: a misspelt limit ("rmp") silently
    # dropped would make a key without that limit.
    model_config = ConfigDict(extra="forbid")

    project: str = Field(min_length=1, max_length=64, description="The project the key belongs to")
    models: list[str] | str | None = Field(default=None, description="Model id globs; default: all")
    endpoints: list[str] | str | None = Field(default=None, description="Endpoint families; default: all")
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute")
    max_concurrency: int | None = Field(default=None, ge=1)
    token_budget: int | None = Field(default=None, ge=1, description="Tokens per budget period")
    budget_period: Literal["day", "month"] = "day"
    expires_at: datetime | None = Field(default=None, description="ISO 8601 or unix time; naive: UTC")
    admin: bool = False
    label: str = Field(default="", max_length=200)


def _check_admin(request: Request) -> None:
    """An admin principal (tenancy on), or a listed ``gateway.admin_keys`` key."""
    request.scope[ENDPOINT_SCOPE_KEY] = "admin"
    principal = principal_of(request.scope)
    if principal is not None and principal.admin:
        return
    keys = gateway_state(request).settings.admin_keys
    if not keys and principal is None:
        raise PermissionDeniedError("The admin API is off: set gateway.admin_keys to use it.")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("The admin API needs 'Authorization: Bearer <admin key>'.")
    given = token.strip().encode("utf-8", "surrogateescape")
    # Every key compared, so timing does not say which one nearly matched.
    if not any([hmac.compare_digest(given, key.encode()) for key in keys]):
        raise PermissionDeniedError("This key is not an admin key.", code="not_admin")


def _manager(request: Request) -> KeyManager:
    _check_admin(request)
    manager = gateway_state(request).services.key_manager
    if manager is None:
        raise NotFoundError(
            "Tenancy is off: there are no project keys to manage (set tenancy.enabled).", code="tenancy_off"
        )
    return manager


def key_json(info: KeyInfo, now: float) -> dict[str, Any]:
    """A key as the API shows it: never its secret (the store does not have it)."""
    limits = info.limits
    return {
        "id": info.key_id,
        "object": "api_key",
        "project": info.project,
        "label": info.label,
        "models": list(info.scopes.models),
        "endpoints": list(info.scopes.endpoints),
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "max_concurrency": limits.max_concurrency,
        "token_budget": limits.token_budget,
        "budget_period": limits.budget_period,
        "admin": info.admin,
        "created_at": int(info.created_at),
        "expires_at": None if info.expires_at is None else int(info.expires_at),
        "revoked_at": None if info.revoked_at is None else int(info.revoked_at),
        "status": info.status(now),
    }


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _unix(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _not_found() -> NotFoundError:
    # The id is not echoed: a caller who pasted a whole token into the path must not see it come back.
    return NotFoundError("No such key.", param="key_id", code="key_not_found")


@router.get("/admin/keys", summary="API keys (of one project with ?project=), without their secrets")
async def list_keys(request: Request, project: str | None = None) -> Response:
    manager = _manager(request)
    keys = await asyncio.to_thread(manager.list, project)
    now = datetime.now(UTC).timestamp()
    return _json({"object": "list", "data": [key_json(info, now) for info in keys]})


@router.post("/admin/keys", summary="Create an API key; the response holds its secret, shown only this once")
async def create_key(request: Request) -> Response:
    manager = _manager(request)
    try:
        body = KeyCreateIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    scopes = Scopes(models=parse_list(body.models), endpoints=parse_list(body.endpoints))
    limits = Limits(
        rpm=body.rpm,
        tpm=body.tpm,
        max_concurrency=body.max_concurrency,
        token_budget=body.token_budget,
        budget_period=body.budget_period,
    )
    token, info = await asyncio.to_thread(
        lambda: manager.create(
            body.project,
            scopes=scopes,
            limits=limits,
            admin=body.admin,
            label=body.label,
            expires_at=_unix(body.expires_at),
        )
    )
    payload = {**key_json(info, datetime.now(UTC).timestamp()), "key": token}
    # no-store: the one response that carries a secret must not stay in a cache on the way.
    return _json(payload, 201, headers={"cache-control": "no-store"})


@router.get("/admin/keys/{key_id}", summary="One API key, without its secret")
async def get_key(request: Request, key_id: str) -> Response:
    manager = _manager(request)
    info = await asyncio.to_thread(manager.get, key_id)
    if info is None:
        raise _not_found()
    return _json(key_json(info, datetime.now(UTC).timestamp()))


@router.delete("/admin/keys/{key_id}", summary="Revoke an API key (seen by every gateway within a second)")
async def revoke_key(request: Request, key_id: str) -> Response:
    manager = _manager(request)
    info = await asyncio.to_thread(manager.revoke, key_id)
    if info is None:
        raise _not_found()
    return _json(key_json(info, datetime.now(UTC).timestamp()))
