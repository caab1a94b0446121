"""``GET /v1/usage``: the caller's own project's usage from the ledger (admins may name any project)."""

from __future__ import annotations

import asyncio
import time

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from core.errors import NotFoundError, PermissionDeniedError
from gateway.metrics import ENDPOINT_SCOPE_KEY
from gateway.state import gateway_state
from gateway.tenant_auth import principal_of

router = APIRouter(tags=["usage"])


@router.get("/v1/usage", summary="Usage of the caller's project, summed by model, key or day")
async def get_usage(
    request: Request,
    by: str = Query("model", description="model, key or day"),
    since: float | None = Query(None, description="unix time; default: 30 days ago"),
    until: float | None = Query(None, description="unix time; default: now"),
    project: str | None = Query(None, description="admins only: another project"),
) -> Response:
    request.scope[ENDPOINT_SCOPE_KEY] = "usage"
    reader = gateway_state(request).services.usage_reader
    principal = principal_of(request.scope)
    if reader is None or principal is None:
        raise NotFoundError("Usage is recorded only with tenancy on.", code="tenancy_off")
    if project is not None and project != principal.project and not principal.admin:
        # Another project's usage is not this key's business; say so without saying whether it exists.
        raise PermissionDeniedError("A key reads only its own project's usage.", code="not_your_project")
    wanted = project or principal.project
    start = since if since is not None else time.time() - 30 * 86400
    rows = await asyncio.to_thread(reader.report, wanted, start, until, by)
    body = {"object": "list", "project": wanted, "by": by, "data": rows}
    return Response(orjson.dumps(body), media_type="application/json")
