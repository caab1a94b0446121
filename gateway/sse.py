"""A server-sent-events response that stops the generation when the client goes away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

DONE_EVENT = b"data: [DONE]\n\n"


def sse_event(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class EventStreamResponse(Response):
    """Sends each ``bytes`` item of ``events`` as it comes.

    A watcher waits for ``http.disconnect`` while the events are pumped; whichever ends first cancels
    the other, and ``events`` is always closed, so its ``finally`` closes the engine stream.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], headers: Mapping[str, str] | None = None) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})})

    def _start(self) -> Message:
        return {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}

    async def _pump(self, send: Send) -> None:
        async for data in self.events:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # The first event is ready (routes pull the engine's first chunk before building the
            # response), so head and first event go out in this step: one segment for a server that
            # coalesces writes (gateway.fast_path.http_protocol), one client wake-up for its first token.
            first = await anext(self.events, None)
            await send(self._start())
            if first is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({"type": "http.response.body", "body": first, "more_body": True})
            pump = asyncio.ensure_future(self._pump(send))
            watch = asyncio.ensure_future(self._watch(receive))
            try:
                await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, watch):
                    task.cancel()
                await asyncio.wait((pump, watch))
        finally:
            await self.events.aclose()
        error = None if pump.cancelled() else pump.exception()
        # A failed send means the client is gone; anything else is ours and worth a log line.
        if error is not None and not isinstance(error, OSError):
            logger.error("event stream failed", exc_info=error)
