"""A client that goes away mid-stream cancels the generation."""

from __future__ import annotations

import asyncio

import httpx
import orjson


async def test_disconnect_closes_the_engine_stream(make_app, scripted):
    engine = scripted(pieces=[f" t{i}" for i in range(1000)], delay_s=0.001)
    app = make_app(engine)
    body = orjson.dumps(
        {"model": "scripted-double", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    first_body = asyncio.Event()
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await first_body.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            first_body.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    assert sent[0]["status"] == 200
    assert len(engine.closed_early) == 1, "the engine stream was not closed on disconnect"
    assert engine.finished == []
    chunks = sum(1 for m in sent if m["type"] == "http.response.body" and m.get("body"))
    assert chunks < 100


def test_disconnect_over_a_real_socket_cancels_generation(make_app, scripted, serve):
    engine = scripted(pieces=[f" t{i}" for i in range(2000)], delay_s=0.002)
    body = {"model": "scripted-double", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with serve(make_app(engine)) as base_url, httpx.Client(base_url=base_url) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
        # Leaving the block closed the connection mid-stream.
        assert engine.early_close.wait(timeout=5), "the engine never saw the disconnect"
    assert engine.finished == []
