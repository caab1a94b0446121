"""Refuses request bodies over a byte limit (413), by content-length or by counting chunked bodies."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import PayloadTooLargeError
from gateway.errors import error_response


class BodyLimitMiddleware:
    """``path_limits``: (path prefix, bytes) pairs that replace ``max_bytes`` there (file uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: tuple[tuple[str, int], ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits

    def _too_large(self, limit: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"Request body is larger than the limit of {limit} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for prefix, path_limit in self.path_limits:
            if scope["path"].startswith(prefix):
                limit = path_limit
                break
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await error_response(self._too_large(limit), scope)(scope, receive, send)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the handler's body read: the error handlers render it as 413.
                    raise self._too_large(limit)
            return message

        await self.app(scope, counting_receive, send)
