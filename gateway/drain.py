"""Draining on shutdown: refuse new work, let what runs finish within a grace, then end it cleanly.

When the server is told to stop (SIGTERM), ``Drain.run(grace_s)`` runs before it closes its sockets
(``gateway.server``): ``/ready`` answers 503 (``draining``), new requests get a 503 in OpenAI's error
format with ``connection: close``, and requests in flight have ``grace_s`` seconds to finish. Then the
drain *cuts*: each event stream still open ends with an error event (``server_shutting_down``) and
``data: [DONE]`` (``gateway.sse``), and a request whose response has not started yet is cancelled and
answered 503. Only then does the server close its connections and run the app's shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import EngineUnavailableError
from gateway.errors import error_response

logger = logging.getLogger(__name__)

DRAIN_SCOPE_KEY = "aihub.drain"
SHUTTING_DOWN_CODE = "server_shutting_down"
_POLL_S = 0.05


def shutting_down(message: str) -> EngineUnavailableError:
    return EngineUnavailableError(message, code=SHUTTING_DOWN_CODE)


@dataclass(slots=True, eq=False)
class _InFlight:
    task: asyncio.Task[object] | None
    started: bool = False  # the response's head went out
    cut: bool = False  # cancelled by the drain before its response started


class Drain:
    """What is in flight, and the switch that ends it. One per app; loop-agnostic until it runs."""

    def __init__(self) -> None:
        self.draining = False
        self._cut = False
        self._in_flight: set[_InFlight] = set()
        self._watchers: set[asyncio.Future[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def track(self, request: _InFlight) -> None:
        self._in_flight.add(request)

    def untrack(self, request: _InFlight) -> None:
        self._in_flight.discard(request)

    def watch(self) -> asyncio.Future[None]:
        """A future that completes when the drain cuts (an event stream waits on it)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._cut:
            future.set_result(None)
        else:
            self._watchers.add(future)
        return future

    def unwatch(self, future: asyncio.Future[None]) -> None:
        self._watchers.discard(future)
        future.cancel()

    async def run(self, grace_s: float, cut_wait_s: float = 2.0, stop: Callable[[], bool] = bool) -> bool:
        """Drain: True when everything in flight finished within ``grace_s``; else cut what is left and
        wait up to ``cut_wait_s`` for it to end. ``stop()`` true (a second signal) ends the wait early."""
        self.draining = True
        logger.info("draining: %d request(s) in flight, %.1f s to finish", self.in_flight, grace_s)
        if await self._wait_idle(grace_s, stop):
            logger.info("drained: every request finished")
            return True
        logger.warning("shutdown grace of %.1f s is over: ending %d request(s)", grace_s, self.in_flight)
        self.cut()
        await self._wait_idle(cut_wait_s, stop)
        return False

    def cut(self) -> None:
        self._cut = True
        for watcher in self._watchers:
            if not watcher.done():
                watcher.set_result(None)
        self._watchers.clear()
        for request in self._in_flight:
            if not request.started and request.task is not None and not request.task.done():
                request.cut = True
                request.task.cancel()

    async def _wait_idle(self, timeout_s: float, stop: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._in_flight and not stop():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True


class DrainMiddleware:
    """Counts requests in flight for the drain; while draining, refuses new ones outside ``open_paths``."""

    def __init__(self, app: ASGIApp, drain: Drain, open_paths: tuple[str, ...]) -> None:
        self.app = app
        self.drain = drain
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drain = self.drain
        if drain.draining and scope["path"] not in self.open_paths:
            await self._refuse(scope, receive, send, "The server is shutting down; retry on another one.")
            return
        scope[DRAIN_SCOPE_KEY] = drain
        request = _InFlight(asyncio.current_task())

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                request.started = True
            await send(message)

        drain.track(request)
        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not request.cut or request.task is None:
                raise
            request.task.uncancel()
            await self._refuse(
                scope, receive, send, "The server is shutting down; the request was not finished in time."
            )
        finally:
            drain.untrack(request)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
        response = error_response(shutting_down(message), scope)
        response.headers["connection"] = "close"
        response.headers["retry-after"] = "1"
        await response(scope, receive, send)
