"""A fast path for the hottest endpoints, past FastAPI's router and dependency resolution.

The same handler functions stay registered on their routers (for the OpenAPI document and for any
path variant the fast path does not take); this only saves the per-request routing work, which is a
large share of the gateway's overhead at low concurrency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import AihubError
from gateway.errors import error_response

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class PathPattern:
    """``{prefix}{param}{suffix}``: one non-empty path parameter (which may hold slashes)."""

    method: str
    prefix: str
    suffix: str
    param: str
    handler: Handler

    def match(self, method: str, path: str) -> str | None:
        if method != self.method or not path.startswith(self.prefix) or not path.endswith(self.suffix):
            return None
        value = path[len(self.prefix) : len(path) - len(self.suffix)]
        return value or None


class HotRouteMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[tuple[str, str], Handler],
        patterns: Sequence[PathPattern] = (),
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.patterns = tuple(patterns)

    def _handler(self, scope: Scope) -> Handler | None:
        method, path = scope.get("method", ""), scope["path"]
        handler = self.routes.get((method, path))
        if handler is not None:
            return handler
        for pattern in self.patterns:
            value = pattern.match(method, path)
            if value is not None:
                scope["path_params"] = {pattern.param: value}
                return pattern.handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handler(scope) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await handler(Request(scope, receive, send))
        except AihubError as exc:
            response = error_response(exc, scope)
        await response(scope, receive, send)
