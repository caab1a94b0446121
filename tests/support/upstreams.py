"""Upstreams for the ``openai`` engine's tests, and a gateway in front of them.

- ``fixed_latency_upstream``: a real ``aihub serve`` process serving the fixed-latency engine double
  (a test double standing in for a vLLM server), killable like a real replica.
- ``ScriptedUpstreamDouble``: an OpenAI-shaped server whose failures are scripted (a test double for a
  broken or misbehaving upstream: 5xx, 429, a stream cut short, a hang), recording what it was sent.
- ``front_gateway``: aihub built from a config, as ``aihub serve`` builds it, on a real uvicorn thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from aihub.compose import build_services, open_store
from aihub.gateway_process import GatewayProcess
from core.model_config import ModelConfig
from gateway.app import create_app
from gateway.settings import GatewaySettings
from ray_cluster.config import AihubConfig
from serving.settings import ServingSettings, UpstreamSettings
from tests.support.server_thread import ServerThread

REMOTE_MODEL = "remote-double"


def fixed_latency_upstream(
    work: Path, *, ttft_s: float = 0.01, itl_s: float = 0.002, tokens: int = 8
) -> GatewayProcess:
    config = {
        "app": {
            "home": str(work / "upstream-home"),
            "prepare_defaults": False,
            "demo": False,
            "embedders": [],
            "default_embedder": None,
            "models": [
                {
                    "id": REMOTE_MODEL,
                    "engine": "fixed-latency",
                    "options": {"ttft_s": ttft_s, "itl_s": itl_s, "tokens": tokens},
                }
            ],
        }
    }
    return GatewayProcess(config, work, ready_timeout_s=60)


@dataclass
class ScriptedUpstreamDouble:
    """Answers like an OpenAI server unless ``mode`` says otherwise.

    Modes: ``ok``; ``status`` (answer ``status`` with ``error_body``); ``cut`` (stream two chunks, then
    drop the connection); ``hang`` (never answer); ``long`` (stream a chunk every 20 ms for 10 s, and
    note in ``disconnected`` when the caller went away). ``/embeddings`` is answered too.
    """

    mode: str = "ok"
    status: int = 500
    error_body: dict[str, Any] = field(default_factory=lambda: {"error": {"message": "scripted failure"}})
    models: tuple[str, ...] = (REMOTE_MODEL,)
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    health_checks: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            self.health_checks += 1
            data = [{"id": m, "object": "model", "created": 1, "owned_by": "double"} for m in self.models]
            await _json(send, 200, {"object": "list", "data": data})
            return
        self.authorizations.append(auth.decode() if auth else None)
        request = orjson.loads(body) if body else {}
        self.requests.append(request)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "long":
            await self._long_stream(receive, send)
            return
        if self.mode == "status":
            await _json(send, self.status, self.error_body)
            return
        if path.endswith("/embeddings"):
            inputs = request["input"]
            data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(inputs)]
            await _json(send, 200, {"object": "list", "data": data, "usage": {"prompt_tokens": len(inputs)}})
            return
        if not request.get("stream"):
            await _json(send, 200, _completion(request))
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for piece in ("Hello", " there"):
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": request["model"],
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + orjson.dumps(chunk) + b"\n\n",
                    "more_body": True,
                }
            )
        if self.mode == "cut":
            raise ConnectionResetError("scripted: the upstream died mid-stream")
        final = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": request["model"],
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        usage = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": request["model"],
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
        tail = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in (final, usage)) + b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail})

    async def _long_stream(self, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]}
        event = b"data: " + orjson.dumps(chunk) + b"\n\n"
        listener = asyncio.ensure_future(receive())
        try:
            for _ in range(500):
                await send({"type": "http.response.body", "body": event, "more_body": True})
                done, _ = await asyncio.wait([listener], timeout=0.02)
                if done and listener.result()["type"] == "http.disconnect":
                    self.disconnected.set()
                    return
        finally:
            listener.cancel()
        await send({"type": "http.response.body", "body": b""})


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": request.get("model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }


async def _json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = orjson.dumps(payload)
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@contextmanager
def scripted_upstream(double: ScriptedUpstreamDouble) -> Iterator[str]:
    """The double on a real uvicorn thread; yields its base URL (``…/v1``)."""
    with ServerThread(double) as url:
        yield url + "/v1"


@contextmanager
def front_gateway(
    home: Path,
    models: list[dict[str, Any]],
    *,
    upstream: UpstreamSettings | None = None,
    gateway: GatewaySettings | None = None,
    embedders: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Iterator[str]:
    """aihub serving ``models`` (dicts of ``app.models``), as ``aihub serve`` composes it; yields its URL."""
    serving = ServingSettings(upstream=upstream or UpstreamSettings(health_interval_s=0.2))
    embedder_configs = tuple(ModelConfig.model_validate(e) for e in embedders)
    config = AihubConfig.build(
        home,
        tuple(ModelConfig.model_validate(m) for m in models),
        embedders=embedder_configs,
        default_embedder=embedder_configs[0].id if embedder_configs else None,
        serving=serving,
        gateway=gateway,
    )
    app = create_app(config.gateway_settings(), build_services(config, open_store(config)))
    with ServerThread(app) as url:
        yield url
