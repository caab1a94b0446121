"""A fast path for the generation endpoints, past FastAPI's router and dependency resolution.

The same handler functions stay registered on their routers (for the OpenAPI document and for any
path variant the fast path does not take); this only saves the per-request routing work, which is a
large share of the gateway's overhead at low concurrency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import AihubError
from gateway.errors import error_response

Handler = Callable[[Request], Awaitable[Response]]


class HotRouteMiddleware:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = (
            self.routes.get((scope.get("method", ""), scope["path"])) if scope["type"] == "http" else None
        )
        if handler is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await handler(Request(scope, receive, send))
        except AihubError as exc:
            response = error_response(exc, scope)
        await response(scope, receive, send)
