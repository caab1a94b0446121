"""Writes of one loop step leave as one segment; nothing written is lost or reordered."""

import asyncio
import socket
from collections.abc import AsyncGenerator, Iterator

import pytest
from fastapi import FastAPI

from gateway.fast_path.http_protocol import CoalescingTransport
from gateway.sse import EventStreamResponse


class RecordingTransport(asyncio.Transport):
    """A stand-in for the socket transport: it records each ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_of_one_step_go_out_together_in_order() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"")
    transport.write(memoryview(b"body"))
    assert real.writes == []
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"next"]


async def test_close_sends_what_was_written_before_it() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert real.writes == [b"last words"]
    assert transport.is_closing()  # delegated


def test_abort_drops_pending_writes() -> None:
    loop = asyncio.new_event_loop()
    try:
        aborted: list[bool] = []
        real = RecordingTransport()
        real.abort = lambda: aborted.append(True)  # type: ignore[method-assign]
        transport = CoalescingTransport(real, loop)
        transport.write(b"never sent")
        transport.abort()
        loop.run_until_complete(asyncio.sleep(0))
        assert real.writes == [] and aborted == [True]
    finally:
        loop.close()


@pytest.fixture
def events_app() -> FastAPI:
    app = FastAPI()

    async def events() -> AsyncGenerator[bytes, None]:
        for index in range(3):
            yield f"data: {index}\n\n".encode()

    @app.get("/events")
    async def stream() -> EventStreamResponse:
        return EventStreamResponse(events())

    return app


@pytest.fixture
def raw_socket(serve: object, events_app: FastAPI) -> Iterator[socket.socket]:
    with serve(events_app) as base_url:  # type: ignore[operator]
        host, port = base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            yield sock


def test_head_and_first_event_arrive_in_one_segment(raw_socket: socket.socket) -> None:
    raw_socket.sendall(b"GET /events HTTP/1.1\r\nhost: test\r\n\r\n")
    first = raw_socket.recv(65536)  # what one send put on the wire (loopback keeps segments whole)
    head, _, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"content-type: text/event-stream" in head
    assert body.startswith(b"9\r\ndata: 0\n\n\r\n")
    rest = first
    while not rest.endswith(b"0\r\n\r\n"):
        rest += raw_socket.recv(65536)
    assert rest.count(b"data: ") == 3
