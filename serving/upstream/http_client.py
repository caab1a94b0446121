"""A small HTTP/1.1 client for calling upstreams: kept-alive connections per origin, timeouts, TLS.

httpx and aiohttp each spend more per request than the gateway's own budget for a proxied call on a
small machine (the issue's target is 1 ms added at p50). An upstream call needs little: a request with a
JSON body, a response read whole or chunk by chunk (server-sent events), connection reuse. Every failure
is an ``UpstreamConnectionError`` or ``UpstreamTimeout`` (mapped to ``core.errors`` by the engine).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
MAX_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY_BYTES = 256 * 1024  # what is read of a non-200 reply, for its error message


class UpstreamConnectionError(Exception):
    """The upstream could not be reached, closed the connection, or did not speak HTTP/1.1."""


class UpstreamTimeout(Exception):
    """Connect, read or total timeout; ``stage`` says which."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"{stage} timeout")
        self.stage = stage


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class Response:
    """A response whose head has been read; the body is read with ``read``, ``chunks`` or ``lines``."""

    def __init__(
        self, client: OriginClient, connection: _Connection, status: int, headers: dict[bytes, bytes]
    ) -> None:
        self.status = status
        self.headers = headers
        self._client = client
        self._connection = connection
        self._chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        length = headers.get(b"content-length")
        self._remaining = int(length) if length is not None else None
        self._complete = False
        self._released = False

    async def chunks(self, read_timeout: float | None) -> AsyncIterator[bytes]:
        """The body as it arrives; each read waits at most ``read_timeout`` seconds (None: no limit)."""
        reader = self._connection.reader
        if self._complete:
            return
        try:
            if not self._chunked:
                if self._remaining is None:  # no length: the body runs to the connection's end
                    while data := await _within(reader.read(65536), read_timeout):
                        yield data
                    return  # the connection is spent: never complete, never reused
                if self._remaining:
                    data = await _within(reader.readexactly(self._remaining), read_timeout)
                    self._remaining = 0
                    yield data
                self._complete = True
                return
            while True:
                # One timeout per chunk (its size line and data), not per read: timers cost.
                piece = await _within(_read_chunk(reader), read_timeout)
                if piece is None:
                    self._complete = True
                    return
                yield piece
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            raise UpstreamConnectionError(f"reading the body failed: {exc!r}") from None

    async def read(self, read_timeout: float | None, limit: int | None = None) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks(read_timeout):
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                break
        return b"".join(parts)

    def release(self) -> None:
        """Back to the pool when the body was read to its end and the server keeps it; else closed."""
        if self._released:
            return
        self._released = True
        keep = self._complete and self.headers.get(b"connection", b"").lower() != b"close"
        self._client.put_back(self._connection, keep)


class OriginClient:
    """Connections to one ``scheme://host:port``; request paths are joined to the URL's path."""

    def __init__(self, base_url: str, *, connect_timeout: float, max_idle: int = 64) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            raise ValueError(f"{base_url!r}: not an http(s) URL")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = 443 if parts.scheme == "https" else 80
        host_header = self.host if self.port == default_port else f"{self.host}:{self.port}"
        self._host_header = host_header.encode()
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._closed = False

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await _within(
                asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=MAX_HEAD_BYTES),
                self._connect_timeout,
                stage="connect",
            )
        except OSError as exc:
            raise UpstreamConnectionError(f"connecting to {self.host}:{self.port} failed: {exc}") from None
        return _Connection(reader, writer)

    def put_back(self, connection: _Connection, keep: bool) -> None:
        if keep and not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            connection.writer.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: bytes = b"",
        read_timeout: float | None,
        origin_path: bool = False,
    ) -> Response:
        """Sends the request and reads the response head. ``headers``: extra ``name: value\\r\\n`` lines.

        A kept-alive connection the server closed meanwhile fails before anything of the request was
        processed, so the request goes once more on a fresh connection.
        """
        target = path if origin_path else self.prefix + path
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\n%s" % (
            method.encode(),
            target.encode(),
            self._host_header,
            headers,
        )
        if body or method == "POST":
            head += b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
        message = head + b"\r\n" + body
        while True:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._connect()
            try:
                connection.writer.write(message)
                status, response_headers = await _within(
                    _read_head(connection.reader), read_timeout, stage="read"
                )
            except (UpstreamConnectionError, ConnectionError, asyncio.IncompleteReadError) as exc:
                connection.writer.close()
                if reused:
                    continue
                raise UpstreamConnectionError(f"{self.host}:{self.port}: {exc}") from None
            except BaseException:
                connection.writer.close()
                raise
            return Response(self, connection, status, response_headers)

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().writer.close()


async def _within(awaitable: Awaitable[T], seconds: float | None, stage: str = "read") -> T:
    """``seconds`` None: the caller holds one timeout around several reads (cheaper than one each)."""
    if seconds is None:
        return await awaitable
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise UpstreamTimeout(stage) from None


async def _read_chunk(reader: asyncio.StreamReader) -> bytes | None:
    """One piece of a chunked body; None at its end (after the trailers)."""
    size_line = await reader.readline()
    if not size_line:
        raise UpstreamConnectionError("connection closed inside a chunked body")
    size = int(size_line.split(b";", 1)[0].strip(), 16)
    if size == 0:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # trailers
        return None
    data = await reader.readexactly(size + 2)
    return data[:-2]


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    try:
        status_line = await reader.readline()
    except ValueError:  # longer than the reader's limit
        raise UpstreamConnectionError("response head too long") from None
    fields = status_line.split(b" ", 2)
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/1."):
        raise UpstreamConnectionError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    headers: dict[bytes, bytes] = {}
    size = len(status_line)
    while True:
        line = await reader.readline()
        size += len(line)
        if line in (b"\r\n", b"\n"):
            break
        if not line or size > MAX_HEAD_BYTES:
            raise UpstreamConnectionError("connection closed inside the response head")
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if fields[1] == b"100":  # an interim reply: the real head follows
        return await _read_head(reader)
    return int(fields[1]), headers
