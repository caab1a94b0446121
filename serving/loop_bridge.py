"""Consuming an async stream that belongs to another thread's event loop.

vLLM's ``AsyncLLM`` binds its output handler to the loop that first used it; a stream pulled from any
other loop would never be fed. ``stream_on_loop`` runs every step of the stream on its home loop and
hands the items over, so callers on other loops (a test's own loop, a server in a thread) still work.
Callers on the home loop itself take the direct path and pay nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import TypeVar, cast

T = TypeVar("T")


async def stream_on_loop(
    home: asyncio.AbstractEventLoop, source: AsyncGenerator[T, None]
) -> AsyncGenerator[T, None]:
    """Yield ``source``'s items, each pulled on ``home``; closing or cancelling this closes ``source`` there.

    Cancelling the caller while it waits cancels the pull on ``home`` too, which is where the engine
    sees the disconnect and frees the request's slot.
    """
    finished = False
    try:
        while True:
            pull = asyncio.run_coroutine_threadsafe(_next(source), home)
            try:
                done, item = await asyncio.wrap_future(pull)
            except asyncio.CancelledError:
                pull.cancel()
                finished = True  # the cancelled pull closed the stream where it runs
                raise
            if done:
                finished = True
                return
            yield cast(T, item)
    finally:
        if not finished and not home.is_closed():
            closing = asyncio.run_coroutine_threadsafe(_close(source), home)
            await asyncio.wrap_future(closing)


async def _next(source: AsyncGenerator[T, None]) -> tuple[bool, T | None]:
    try:
        return False, await anext(source)
    except StopAsyncIteration:
        return True, None


async def _close(source: AsyncGenerator[T, None]) -> None:
    await source.aclose()
