"""The requests of `aihub bench soak`: one function per kind of traffic, each judging its own answer.

Kinds: ``chat`` (non-streamed), ``stream`` (read to ``[DONE]``), ``cancel`` (a stream dropped after its
first event), ``rag`` (a pipeline, non-streamed), ``embeddings``, ``search`` (a vector store), and
``oversized`` (a body over the size limit, a max_tokens over the cap, a prompt over the context: each
must be refused with a 4xx). Every request runs under a timeout; one that exceeds it is a hang.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

QUESTION = "Which EuroHPC supercomputer is hosted in Bologna?"
# Outcome classes: "ok"; failures: "5xx", "hang", "cut" (the connection broke or a stream ended
# without [DONE]), "unexpected" (any other wrong answer: a 4xx to a valid request, a 2xx to an
# oversized one, an error event in a stream).
FAILURES = ("5xx", "hang", "cut", "unexpected")


@dataclass(frozen=True)
class Target:
    """What the served gateway offers; kinds without their part (no pipeline, …) are not sent."""

    base_url: str
    model: str
    pipeline: str | None = None  # e.g. rag/soak
    embedding_model: str | None = None
    vector_store: str | None = None
    max_request_bytes: int = 2 * 1024 * 1024
    max_tokens: int = 16
    oversized_max_tokens: int = 10_000_000
    oversized_prompt_words: int = 40_000  # over the context of the models served here, under the body limit

    def kinds(self) -> list[str]:
        kinds = ["chat", "stream", "cancel", "oversized"]
        if self.pipeline:
            kinds.append("rag")
        if self.embedding_model:
            kinds.append("embeddings")
        if self.vector_store:
            kinds.append("search")
        return kinds


@dataclass(frozen=True)
class Result:
    kind: str
    outcome: str  # "ok" or one of FAILURES
    seconds: float
    status: int = 0
    detail: str = ""


def _chat(model: str, content: str, max_tokens: int, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }
    if stream:
        body["stream"] = True
    return body


def _judge_status(status: int, text: str) -> tuple[str, str]:
    if status >= 500:
        return "5xx", text[:300]
    if status != 200:
        return "unexpected", f"{status}: {text[:300]}"
    return "ok", ""


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> tuple[int, str]:
    response = await client.post(
        path, content=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    return response.status_code, response.text


async def chat(client: httpx.AsyncClient, target: Target, n: int) -> tuple[str, int, str]:
    status, text = await _post(
        client, "/v1/chat/completions", _chat(target.model, QUESTION, target.max_tokens)
    )
    outcome, detail = _judge_status(status, text)
    return outcome, status, detail


async def rag(client: httpx.AsyncClient, target: Target, n: int) -> tuple[str, int, str]:
    assert target.pipeline is not None
    body = _chat(target.pipeline, QUESTION, target.max_tokens)
    status, text = await _post(client, "/v1/chat/completions", body)
    outcome, detail = _judge_status(status, text)
    return outcome, status, detail


async def stream(
    client: httpx.AsyncClient, target: Target, n: int, cancel: bool = False
) -> tuple[str, int, str]:
    body = _chat(target.model, QUESTION, target.max_tokens, stream=True)
    last = ""
    async with client.stream("POST", "/v1/chat/completions", content=orjson.dumps(body)) as response:
        if response.status_code != 200:
            text = (await response.aread()).decode(errors="replace")
            outcome, detail = _judge_status(response.status_code, text)
            return outcome, response.status_code, detail
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            last = line.removeprefix("data: ")
            if cancel:  # drop the connection after the first event: the server must stop generating
                return "ok", 200, ""
            if last.startswith('{"error"'):
                return "unexpected", 200, f"error event: {last[:300]}"
    if last != "[DONE]":
        return "cut", 200, f"the stream ended without [DONE] (last: {last[:200]!r})"
    return "ok", 200, ""


async def cancelled_stream(client: httpx.AsyncClient, target: Target, n: int) -> tuple[str, int, str]:
    return await stream(client, target, n, cancel=True)


async def embeddings(client: httpx.AsyncClient, target: Target, n: int) -> tuple[str, int, str]:
    body = {"model": target.embedding_model, "input": [QUESTION, f"passage {n} about supercomputers"]}
    status, text = await _post(client, "/v1/embeddings", body)
    outcome, detail = _judge_status(status, text)
    return outcome, status, detail


async def search(client: httpx.AsyncClient, target: Target, n: int) -> tuple[str, int, str]:
    path = f"/v1/vector_stores/{target.vector_store}/search"
    status, text = await _post(client, path, {"query": QUESTION, "max_num_results": 3})
    outcome, detail = _judge_status(status, text)
    return outcome, status, detail


async def oversized(client: httpx.AsyncClient, target: Target, n: int) -> tuple[str, int, str]:
    """In turn: a body over the byte limit, a max_tokens over any cap, a prompt over the context."""
    variant = n % 3
    if variant == 0:
        padding = "x" * (target.max_request_bytes + 1024)
        body = _chat(target.model, padding, target.max_tokens)
    elif variant == 1:
        body = _chat(target.model, QUESTION, target.oversized_max_tokens)
    else:
        body = _chat(target.model, "word " * target.oversized_prompt_words, target.max_tokens)
    status, text = await _post(client, "/v1/chat/completions", body)
    if 400 <= status < 500:
        return "ok", status, ""
    if status >= 500:
        return "5xx", status, text[:300]
    return "unexpected", status, f"oversized input (variant {variant}) answered {status}, not a 4xx"


Request = Callable[[httpx.AsyncClient, Target, int], Awaitable[tuple[str, int, str]]]
REQUESTS: dict[str, Request] = {
    "chat": chat,
    "stream": stream,
    "cancel": cancelled_stream,
    "rag": rag,
    "embeddings": embeddings,
    "search": search,
    "oversized": oversized,
}


async def run_one(client: httpx.AsyncClient, target: Target, kind: str, n: int, timeout_s: float) -> Result:
    """One request of ``kind``; a request still running after ``timeout_s`` is a hang."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            outcome, status, detail = await REQUESTS[kind](client, target, n)
    except TimeoutError:
        return Result(kind, "hang", time.perf_counter() - started, detail=f"no answer within {timeout_s} s")
    except httpx.HTTPError as exc:
        return Result(kind, "cut", time.perf_counter() - started, detail=repr(exc)[:300])
    return Result(kind, outcome, time.perf_counter() - started, status, detail)
