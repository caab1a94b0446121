"""A minimal HTTP/1.1 client on asyncio streams, for measuring a gateway rather than its client.

Benchmarks compare an engine called in-process with the same engine behind HTTP. Whatever the client
spends parsing lands on the HTTP side of that comparison: on a 2-core machine aiohttp's streaming
reader adds about 0.6 ms to a first token that a bare HTTP/1.1 reader does not. This client does only
what the load generator needs: keep-alive connections (one per concurrent request), a POST with a
body, and a response body with ``Content-Length`` or chunked transfer coding, read whole or piece by
piece. Plain ``http://`` only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit


class LeanHttpError(Exception):
    """The server's reply is not HTTP/1.1 as this client reads it, or the connection closed early."""


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class LeanResponse:
    def __init__(self, status: int, headers: dict[bytes, bytes], reader: asyncio.StreamReader) -> None:
        self.status = status
        self.headers = headers
        self._reader = reader
        self._chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        self._remaining = int(headers.get(b"content-length", b"0"))
        self.complete = False
        # The server keeps the connection for the next request unless it says otherwise.
        self.reusable = headers.get(b"connection", b"").lower() != b"close"

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (one chunk of the chunked coding at a time)."""
        if not self._chunked:
            if self._remaining:
                yield await self._reader.readexactly(self._remaining)
            self.complete = True
            return
        while True:
            size_line = await self._reader.readline()
            if not size_line:
                raise LeanHttpError("connection closed inside a chunked body")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await self._reader.readline()) not in (b"\r\n", b""):  # trailers
                    pass
                self.complete = True
                return
            data = await self._reader.readexactly(size + 2)
            yield data[:-2]

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_lines(self) -> AsyncIterator[bytes]:
        """Body lines (without their ``\\n``), whatever the chunk boundaries: server-sent events."""
        pending = b""
        async for chunk in self.iter_chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line
        if pending:
            yield pending


class LeanHttpClient:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"{base_url!r}: only http://host:port URLs")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._idle: list[_Connection] = []
        self._host_header = f"{self._host}:{self._port}".encode()

    async def _connection(self, fresh: bool = False) -> _Connection:
        while self._idle and not fresh:
            connection = self._idle.pop()
            if not connection.reader.at_eof():  # the server closes idle connections after a while
                return connection
            connection.writer.close()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return _Connection(reader, writer)

    @asynccontextmanager
    async def post(
        self, path: str, body: bytes, content_type: bytes = b"application/json", headers: bytes = b""
    ) -> AsyncIterator[LeanResponse]:
        """``headers``: extra ``name: value\\r\\n`` lines (e.g. an authorization header)."""
        request = b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n%s" % (
            (self._prefix + path).encode(),
            self._host_header,
            content_type,
            len(body),
            headers,
            body,
        )
        reused = bool(self._idle)
        connection = await self._connection()
        reuse = False
        try:
            connection.writer.write(request)
            try:
                response = await _read_head(connection.reader)
            except (LeanHttpError, ConnectionError):
                if not reused:
                    raise
                # The server closed a kept-alive connection as the request went out: nothing of it
                # was read, so it is sent again once on a new connection.
                connection.writer.close()
                connection = await self._connection(fresh=True)
                connection.writer.write(request)
                response = await _read_head(connection.reader)
            yield response
            reuse = response.complete and response.reusable
        finally:
            if reuse:
                self._idle.append(connection)
            else:
                connection.writer.close()

    async def aclose(self) -> None:
        while self._idle:
            connection = self._idle.pop()
            connection.writer.close()
            await connection.writer.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> LeanResponse:
    status_line = await reader.readline()
    fields = status_line.split(b" ", 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/1."):
        raise LeanHttpError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[bytes, bytes] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise LeanHttpError("connection closed inside the response head")
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return LeanResponse(int(fields[1]), headers, reader)
