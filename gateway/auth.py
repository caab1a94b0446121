"""Optional bearer API keys (``Authorization: Bearer <key>``), checked before any routing work."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import AuthenticationError
from gateway.errors import error_response


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: Iterable[str], open_paths: Iterable[str]) -> None:
        self.app = app
        self.keys = tuple(key.encode() for key in keys)
        self.open_paths = frozenset(open_paths)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = bytes(value).partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                token = token.strip()
                # Compare against every key so timing does not reveal which one nearly matched.
                return any([hmac.compare_digest(token, key) for key in self.keys])
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        error = AuthenticationError(
            "Incorrect or missing API key. Pass it as 'Authorization: Bearer <key>'.", code="invalid_api_key"
        )
        await error_response(error, scope)(scope, receive, send)
