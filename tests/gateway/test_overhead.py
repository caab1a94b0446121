"""Guards for the gateway's cost: per-request overhead in-process, idle memory, no heavy imports."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

REPO_ROOT = Path(__file__).resolve().parents[2]


def _scope(body: bytes) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }


async def test_app_adds_well_under_a_millisecond_per_request(make_app, scripted):
    engine = scripted(pieces=[" tok"] * 16)
    app = make_app(engine)
    body = orjson.dumps({"model": "scripted-double", "messages": [{"role": "user", "content": "hi"}]})

    async def through_app() -> None:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(_scope(body), receive, send)
        assert sent[0]["status"] == 200

    async def direct() -> None:
        request = engine.requests[-1]
        async for _ in engine.generate(request):
            pass

    async def timed(call, n: int) -> float:
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    await timed(through_app, 50)
    overhead = await timed(through_app, 300) - await timed(direct, 300)
    assert overhead < 0.001, f"in-process overhead {overhead * 1e6:.0f} us"


def test_idle_gateway_is_light():
    code = (
        "import sys, gateway.app, gateway.services, gateway.settings\n"
        "gateway.app.create_app(gateway.settings.GatewaySettings(), gateway.services.GatewayServices())\n"
        "heavy = [m for m in ('torch', 'transformers', 'faiss', 'qdrant_client', 'ray', 'vllm') if m in sys.modules]\n"
        "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]\n"
        "print(heavy, int(rss) // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    heavy, rss_mb = out.stdout.rsplit(" ", 1)
    assert heavy == "[]"
    assert int(rss_mb) < 150, f"idle RSS {rss_mb} MB"
