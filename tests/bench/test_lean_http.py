"""The benchmarks' bare HTTP/1.1 client against a real uvicorn server, and the serving comparison over it."""

import asyncio
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from bench.lean_http import LeanHttpClient
from bench.loadgen import LoadSpec
from bench.serving_bench import compare
from gateway.app import create_app
from gateway.services import GatewayServices
from gateway.settings import GatewaySettings
from serving.fixed_latency_engine import FixedLatencyEngineDouble

CONNECTIONS: set[tuple[str, int]] = set()


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    CONNECTIONS.add(tuple(scope["client"]))
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/echo":
        reply = orjson.dumps({"got": body.decode(), "type": dict(scope["headers"])[b"content-type"].decode()})
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": reply})
    elif path == "/events":
        # Lines cut across chunk boundaries, as a server may send them.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"data: one\n", b"\ndata: t", b"wo\n\nda", b"ta: three\n\n", b"tail"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"no such path"})


class ServerThread:
    def __init__(self, app: object, keep_alive_s: float = 5) -> None:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=keep_alive_s,  # type: ignore[arg-type]
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def raw_server() -> Iterator[str]:
    CONNECTIONS.clear()
    with ServerThread(raw_app) as base_url:
        yield base_url


async def test_bodies_lines_and_statuses_over_one_kept_alive_connection(raw_server: str) -> None:
    client = LeanHttpClient(raw_server)
    try:
        async with client.post("/echo", b"hello") as response:
            assert response.status == 200
            assert orjson.loads(await response.read()) == {"got": "hello", "type": "application/json"}
        async with client.post("/events", b"") as response:
            assert response.headers[b"transfer-encoding"] == b"chunked"
            lines = [line async for line in response.iter_lines()]
        assert lines == [b"data: one", b"", b"data: two", b"", b"data: three", b"", b"tail"]
        async with client.post("/missing", b"") as response:
            assert response.status == 404
            assert await response.read() == b"no such path"
    finally:
        await client.aclose()
    assert len(CONNECTIONS) == 1  # all three requests went over the same connection


async def test_an_unread_body_does_not_leak_into_the_next_request(raw_server: str) -> None:
    client = LeanHttpClient(raw_server)
    try:
        async with client.post("/events", b"") as response:
            assert response.status == 200  # body left unread: the connection must not be reused
        async with client.post("/echo", b"again") as response:
            assert orjson.loads(await response.read())["got"] == "again"
    finally:
        await client.aclose()
    assert len(CONNECTIONS) == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    CONNECTIONS.clear()
    with ServerThread(raw_app, keep_alive_s=0.1) as base_url:
        client = LeanHttpClient(base_url)
        try:
            for text in (b"first", b"after the server closed the idle connection"):
                async with client.post("/echo", text) as response:
                    assert orjson.loads(await response.read())["got"] == text.decode()
                await asyncio.sleep(0.5)
        finally:
            await client.aclose()
    assert len(CONNECTIONS) == 2


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="only http"):
        LeanHttpClient("https://127.0.0.1:8443")


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
async def test_serving_comparison_pairs_direct_and_gateway_requests(client: str) -> None:
    served = FixedLatencyEngineDouble("double", ttft_s=0.002, itl_s=0.001, tokens=6)
    direct = FixedLatencyEngineDouble("double", ttft_s=0.002, itl_s=0.001, tokens=6)
    app = create_app(GatewaySettings(), GatewayServices(engines={"double": served}))
    specs = [
        LoadSpec(concurrency=1, requests=12, max_tokens=6, stream=True),
        LoadSpec(concurrency=1, requests=12, max_tokens=6, stream=False),
        LoadSpec(concurrency=4, requests=16, max_tokens=6, stream=True),
    ]
    await direct.start()
    try:
        with ServerThread(app) as base_url:
            results = await compare("double", direct, base_url, "double", specs, warmup=2, client=client)
    finally:
        await direct.aclose()
    assert [r.spec for r in results] == specs
    for result in results:
        for report in (result.direct, result.gateway):
            assert report.completed == result.spec.requests
            assert report.output_throughput == pytest.approx(6 * report.request_throughput)
        # Every token of a streamed answer arrives as its own event, so the gap between them shows.
        if result.spec.stream:
            assert result.gateway.itl_ms[0] > 0.5
        assert result.gateway.ttft_ms[0] >= 2.0
