"""``until_disconnected`` runs the work in the caller's task and cancels it when the client leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import Request

from gateway.disconnect import ClientDisconnected, until_disconnected


def request_with(receive: Any) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)


def connection(leaves: asyncio.Event) -> Any:
    """A request whose (empty) body came whole, then the disconnect once ``leaves`` is set."""
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await leaves.wait()
        return {"type": "http.disconnect"}

    return receive


async def test_the_works_result_comes_back_and_the_watch_ends() -> None:
    leaves = asyncio.Event()

    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await until_disconnected(request_with(connection(leaves)), work()) == 7
    leaves.set()  # a disconnect after the answer cancels nothing
    await asyncio.sleep(0.01)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_client_that_leaves_cancels_the_work_and_its_cleanup_runs() -> None:
    leaves = asyncio.Event()
    cleaned: list[str] = []

    async def work() -> int:
        try:
            leaves.set()
            await asyncio.sleep(10)
            return 1
        finally:
            cleaned.append("closed")

    with pytest.raises(ClientDisconnected):
        await until_disconnected(request_with(connection(leaves)), work())
    assert cleaned == ["closed"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await asyncio.sleep(0)  # this task is not cancelled afterwards


async def test_the_requests_own_cancellation_is_not_taken_for_a_disconnect() -> None:
    leaves = asyncio.Event()
    started = asyncio.Event()

    async def handler() -> None:
        async def work() -> None:
            started.set()
            await asyncio.sleep(10)

        await until_disconnected(request_with(connection(leaves)), work())

    task = asyncio.create_task(handler())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_work_that_swallows_the_cancellation_leaves_its_caller_uncancelled() -> None:
    leaves = asyncio.Event()

    async def stubborn() -> str:
        try:
            leaves.set()
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "finished anyway"
        return "slept"

    assert await until_disconnected(request_with(connection(leaves)), stubborn()) == "finished anyway"
    # A cancellation left counted would turn the caller's next ``asyncio.timeout`` expiry into a
    # CancelledError instead of a TimeoutError.
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_body_still_arriving_is_read_whole_before_the_watch_starts() -> None:
    pieces = [
        {"type": "http.request", "body": b'{"a": ', "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
    ]
    leaves = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0.01)  # each piece comes a while later, as over a socket
        if pieces:
            return pieces.pop(0)
        await leaves.wait()
        return {"type": "http.disconnect"}

    request = request_with(receive)

    async def parse() -> bytes:
        return await request.body()

    assert await until_disconnected(request, parse()) == b'{"a": 1}'
