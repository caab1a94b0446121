"""Work for a request that has no response yet stops when its client goes away.

A streamed response watches for ``http.disconnect`` itself (``gateway.sse``). Before that (a request
queued for a batch slot, a non-streamed generation, an embeddings forward) nothing reads the
connection, and the server would compute to the end for nobody: ``until_disconnected`` runs the work
while it waits for ``http.disconnect`` on the request's receive channel, and cancels the work when the
client leaves first. Cancelling closes the engine stream, which frees the batch slot (``core.engine``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from gateway.tenant_auth import INTERRUPTED_SCOPE_KEY

T = TypeVar("T")

# nginx's "client closed request": never seen by the client, but counted as such in metrics and logs.
CLIENT_CLOSED_STATUS = 499


class ClientDisconnected(Exception):
    """The client closed its connection before the response was ready; the work was cancelled."""


async def _disconnect(receive: Receive) -> None:
    # Called once the body was read: the server answers only when the connection closes (uvicorn, and
    # the test clients once the response is complete). A server that answers anything else again (not
    # ASGI, but some harnesses replay the body) would make this loop spin: then stop watching instead.
    if (await receive())["type"] != "http.disconnect":
        await asyncio.Event().wait()


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then the work is cancelled (and awaited, so
    its cleanup ran) and ``ClientDisconnected`` is raised. Call only after the body was read."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(request.receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request's own task is cancelled
        if not task.done():
            task.cancel()
        watch.cancel()
        await asyncio.wait((task, watch))
    if task.cancelled() and watch.done() and not watch.cancelled():
        raise ClientDisconnected
    return task.result()


def client_closed_response(scope: Scope) -> Response:
    """What a route returns for a client that left: nobody reads it, the status is for metrics."""
    scope[INTERRUPTED_SCOPE_KEY] = True
    return Response(status_code=CLIENT_CLOSED_STATUS)
