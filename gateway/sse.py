"""A server-sent-events response that stops the generation when the client goes away.

Every stream that started ends with ``data: [DONE]``: after its last chunk, after an error event, and
when the server, shutting down, ends it early (an error event with code ``server_shutting_down`` first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from core.errors import ErrorKind
from gateway.drain import DRAIN_SCOPE_KEY, Drain, shutting_down
from gateway.errors import describe, error_body

logger = logging.getLogger(__name__)

DONE_EVENT = b"data: [DONE]\n\n"
_ERROR_EVENT = b'data: {"error":'


def sse_event(payload: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _shutdown_event() -> bytes:
    _, body = describe(shutting_down("The server is shutting down; the stream was ended before it finished."))
    return sse_event(body)


class EventStreamResponse(Response):
    """Sends each ``bytes`` item of ``events`` as it comes.

    A watcher waits for ``http.disconnect`` while the events are pumped, and a second one for the
    server's drain to cut (``gateway.drain``); whichever ends first cancels the others, and ``events``
    is always closed, so its ``finally`` closes the engine stream.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], headers: Mapping[str, str] | None = None) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})})
        self._last = b""

    def _start(self) -> Message:
        return {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}

    async def _send(self, send: Send, data: bytes) -> None:
        self._last = data
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async def _finish(self, send: Send) -> None:
        """An error event is always followed by [DONE] (OpenAI clients raise on the error; others see
        a complete stream), then the body ends."""
        if self._last.startswith(_ERROR_EVENT):
            await self._send(send, DONE_EVENT)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        while True:
            try:
                data = await anext(self.events)
            except StopAsyncIteration:
                break
            except Exception:  # the events' own failure (a failed send is the client's, raised below)
                logger.exception("event stream failed")
                body = error_body(
                    ErrorKind.INTERNAL, "The server had an error while streaming.", None, "internal_error"
                )
                await self._send(send, sse_event(body))
                break
            await self._send(send, data)
        await self._finish(send)

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        drain: Drain | None = scope.get(DRAIN_SCOPE_KEY)
        cut_first = False
        try:
            # The first event is ready (routes pull the engine's first chunk before building the
            # response), so head and first event go out in this step: one segment for a server that
            # coalesces writes (gateway.fast_path.http_protocol), one client wake-up for its first token.
            first = await anext(self.events, None)
            await send(self._start())
            if first is None:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await self._send(send, first)
            pump = asyncio.ensure_future(self._pump(send))
            watch = asyncio.ensure_future(self._watch(receive))
            cut = drain.watch() if drain is not None else None
            try:
                waiters = (pump, watch) if cut is None else (pump, watch, cut)
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                cut_first = cut is not None and cut.done() and not pump.done() and not watch.done()
            finally:
                for task in (pump, watch):
                    task.cancel()
                await asyncio.wait((pump, watch))
                if drain is not None and cut is not None:
                    drain.unwatch(cut)
        finally:
            await self.events.aclose()
        if cut_first:  # the server is shutting down and its grace is over: end the stream cleanly
            try:
                await self._send(send, _shutdown_event())
                await self._finish(send)
            except OSError:
                pass  # the client left meanwhile
            return
        error = None if pump.cancelled() else pump.exception()
        # A failed send means the client is gone; anything else is ours and worth a log line.
        if error is not None and not isinstance(error, OSError):
            logger.error("event stream failed", exc_info=error)
